//! Reports on trained weights: evaluation against the baselines ([`eval`],
//! with [`metrics`]), export of the shipped weights ([`export`]) and their
//! model card ([`card`]), which prints the run's [`lineage`].

pub mod card;
pub mod eval;
pub mod export;
pub mod lineage;
pub mod metrics;
