//! Training and validation data: fetching, selecting, downscaling, loading.
//!
//! Sources (and nothing else):
//! * training photographs from four Debian packages: `enlightenment-data`
//!   (its `.edj` Eet archives embed JPEG streams), `mate-backgrounds`,
//!   `plasma-workspace-wallpapers`, `palapeli-data`;
//! * validation photographs bundled in the scikit-image, scikit-learn and
//!   matplotlib wheels;
//! * darktable's `noiseprofiles.json` (Debian `darktable`) for the noise model.
//!
//! Which files are photographs was decided once, by looking at them, and is
//! written down in `training/data/photos.json` (compiled into the binary).
//! [`fetch_data`] follows that list; it never re-decides, and it refuses a
//! source whose SHA-256 differs from the list.
//!
//! Targets are downscaled by an integer factor with an exact box filter
//! ([`box_downscale`]) so that JPEG artefacts and residual sensor noise of the
//! sources average away. Averaging happens in linear light: a camera pixel
//! integrates photons, so the mean of linear values is what a sensor with
//! `factor`-times larger pixels would have recorded (averaging sRGB code values
//! would darken high-contrast edges and fine textures).
//!
//! Downloads go through the ordinary clients: `apt-get download` + `dpkg -x`
//! for Debian packages, `pip download` for wheels (opened with the `zip`
//! crate; no Python runs besides pip as a downloader).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use image::RgbImage;
use rayon::prelude::*;

mod downscale;
mod fetch;
mod jpeg;
mod list;
mod manifest;

pub use downscale::*;
pub use fetch::*;
pub use jpeg::*;
pub use list::*;
pub use manifest::*;

/// The photo list, compiled in from `training/data/photos.json`.
pub const PHOTOS_JSON: &str = include_str!("../../data/photos.json");
/// File name of the manifest inside the output directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of darktable's noise profiles inside the output directory.
pub const NOISE_PROFILES_FILE: &str = "noiseprofiles.json";
/// Version of the manifest layout.
pub const MANIFEST_FORMAT: u32 = 1;
/// How targets are made, recorded in the manifest.
pub const DOWNSCALE_METHOD: &str = "integer box filter: centred crop to a multiple of the factor, \
mean of each factor x factor block in linear light (sRGB EOTF, IEC 61966-2-1), re-encoded to 8-bit sRGB with rounding";

/// `training/data/set` of this checkout (the default output directory).
pub fn default_out_dir() -> PathBuf {
    realdenoise::checkout::repository_path("training/data/set")
}

/// Everything that can go wrong while fetching or loading the data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "could not fetch `{package}`: `{command}` failed:\n{stderr}\n\
         hint: run that command by hand; apt-get needs the Debian bookworm sources (`apt-get update`), \
         pip needs its package index; a pinned version that the archive no longer carries must be \
         re-pinned in training/data/photos.json (and the photos re-checked)"
    )]
    FetchFailed { package: String, command: String, stderr: String },
    #[error("missing file {path}: {hint}")]
    MissingFile { path: PathBuf, hint: String },
    #[error("SHA-256 mismatch for {what}: expected {expected}, found {actual}")]
    HashMismatch { what: String, expected: String, actual: String },
    #[error("cannot decode {what}: {message}")]
    Decode { what: String, message: String },
    #[error("cannot encode {what}: {message}")]
    Encode { what: String, message: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid {what}: {message}")]
    Invalid { what: String, message: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DataError + '_ {
    move |source| DataError::Io { path: path.to_path_buf(), source }
}


// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Val,
}

/// A decoded target image and its manifest name.
#[derive(Debug, Clone)]
pub struct NamedImage {
    pub name: String,
    pub image: RgbImage,
}

/// Loads every image of `split` from a data set directory, checking each file
/// against the manifest (SHA-256 and size).
pub fn load_split(dir: &Path, split: Split) -> Result<Vec<NamedImage>, DataError> {
    let manifest = Manifest::read(dir)?;
    let entries = manifest.entries(split);
    if entries.is_empty() {
        return Err(DataError::Invalid {
            what: dir.join(MANIFEST_FILE).display().to_string(),
            message: format!("no {split:?} images listed"),
        });
    }
    entries
        .par_iter()
        .map(|e| {
            let path = dir.join(&e.file);
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    return Err(DataError::MissingFile { path, hint: "listed in manifest.json; rebuild with fetch-data".into() })
                }
                Err(err) => return Err(io_err(&path)(err)),
            };
            let actual = sha256_hex(&bytes);
            if actual != e.sha256 {
                return Err(DataError::HashMismatch { what: path.display().to_string(), expected: e.sha256.clone(), actual });
            }
            let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
                .map_err(|err| DataError::Decode { what: path.display().to_string(), message: err.to_string() })?
                .to_rgb8();
            if [image.width(), image.height()] != e.size {
                return Err(DataError::Invalid {
                    what: path.display().to_string(),
                    message: format!("size {}x{} but manifest says {}x{}", image.width(), image.height(), e.size[0], e.size[1]),
                });
            }
            Ok(NamedImage { name: e.name.clone(), image })
        })
        .collect()
}

/// Path of darktable's noise profiles inside a data set directory.
pub fn noise_profiles_path(dir: &Path) -> PathBuf {
    dir.join(NOISE_PROFILES_FILE)
}
