//! The weights file round-trips and every kind of damage has its own error.

use crate::common;

use burn::module::Module;
use burn::tensor::Tensor;
use common::{device, pseudo_random, tensor, values, Cpu};
use realdenoise::weights::{from_bytes, read_header, to_bytes, Header, TrainingMetadata, WeightsError};
use realdenoise::UNetConfig;

fn small_config() -> UNetConfig {
    UNetConfig::new().with_base_channels(8).with_channel_multipliers(vec![1, 2]).with_blocks_per_level(1).with_timesteps(20)
}

fn file() -> Vec<u8> {
    let config = small_config();
    let model = config.init::<Cpu>(&device()).unwrap();
    to_bytes(&model, &config, &TrainingMetadata::untrained())
}

/// Re-assembles a file around an edited header, with a valid checksum.
fn with_header(bytes: &[u8], edit: impl FnOnce(&mut Header)) -> Vec<u8> {
    let (mut header, data) = read_header(bytes).unwrap();
    edit(&mut header);
    let json = serde_json::to_vec(&header).unwrap();
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    // Keep exactly the data the edited table describes.
    out.extend_from_slice(&data[..(2 * header.parameter_count()).min(data.len())]);
    let checksum = crc32fast::hash(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

#[test]
fn weights_round_trip_within_f16_precision() {
    let config = small_config();
    let model = config.init::<Cpu>(&device()).unwrap();
    let mut metadata = TrainingMetadata::untrained();
    metadata.iterations = 1234;
    let bytes = to_bytes(&model, &config, &metadata);
    let (loaded, header) = from_bytes::<Cpu>(&bytes, &device()).unwrap();
    assert_eq!(header.model, config);
    assert_eq!(header.training, metadata);
    assert_eq!(header.parameter_count(), model.num_params());
    assert_eq!(loaded.num_params(), model.num_params());

    let x = tensor(pseudo_random(3 * 24 * 40, 9), [1, 3, 24, 40]);
    let t = Tensor::<Cpu, 1>::full([1], 13.0, &device());
    let original = values(model.forward(x.clone(), t.clone()));
    let restored = values(loaded.forward(x, t));
    let worst = original.iter().zip(&restored).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 2e-2, "outputs differ by {worst} after an f16 round trip");
    assert!(worst > 0.0, "f16 storage should perturb the outputs slightly");
    // Saving the loaded model again gives the very same bytes.
    assert_eq!(to_bytes(&loaded, &config, &metadata), bytes);
}

#[test]
fn truncated_files_are_reported_as_truncated() {
    let bytes = file();
    for length in [0, 10, 19, 40, bytes.len() / 2, bytes.len() - 1] {
        match from_bytes::<Cpu>(&bytes[..length], &device()) {
            Err(WeightsError::Truncated { found, .. }) => assert_eq!(found, length),
            other => panic!("length {length}: expected Truncated, got {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn a_flipped_bit_is_reported_as_corruption() {
    let bytes = file();
    for position in [bytes.len() - 100, bytes.len() / 2, 40] {
        let mut damaged = bytes.clone();
        damaged[position] ^= 0x10;
        assert!(
            matches!(from_bytes::<Cpu>(&damaged, &device()), Err(WeightsError::ChecksumMismatch { .. })),
            "byte {position}"
        );
    }
}

#[test]
fn foreign_files_versions_and_trailing_bytes_are_refused() {
    let bytes = file();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&[0; 64]);
    assert!(matches!(from_bytes::<Cpu>(&png, &device()), Err(WeightsError::BadMagic)));

    let mut future = bytes.clone();
    future[8..12].copy_from_slice(&7u32.to_le_bytes());
    assert!(matches!(
        from_bytes::<Cpu>(&future, &device()),
        Err(WeightsError::UnsupportedVersion { found: 7, supported: 1 })
    ));

    let mut longer = bytes.clone();
    longer.extend_from_slice(&[1, 2, 3]);
    assert!(matches!(from_bytes::<Cpu>(&longer, &device()), Err(WeightsError::TrailingBytes(3))));
}

#[test]
fn a_file_for_another_architecture_is_refused() {
    let bytes = file();
    // Same tensors, but a header that describes a wider network.
    let wider = with_header(&bytes, |header| header.model.base_channels = 16);
    match from_bytes::<Cpu>(&wider, &device()) {
        Err(WeightsError::ArchitectureMismatch(message)) => assert!(message.contains("shape"), "{message}"),
        other => panic!("expected ArchitectureMismatch, got {:?}", other.map(|_| ())),
    }
    let renamed = with_header(&bytes, |header| header.architecture = "someone-elses-net".into());
    assert!(matches!(from_bytes::<Cpu>(&renamed, &device()), Err(WeightsError::UnknownArchitecture { .. })));
    let invalid = with_header(&bytes, |header| header.model.norm_groups = 3);
    assert!(matches!(from_bytes::<Cpu>(&invalid, &device()), Err(WeightsError::InvalidConfig(_))));
    let fewer = with_header(&bytes, |header| {
        header.tensors.pop();
    });
    match from_bytes::<Cpu>(&fewer, &device()) {
        Err(WeightsError::ArchitectureMismatch(message)) => assert!(message.contains("tensors"), "{message}"),
        other => panic!("expected ArchitectureMismatch, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_garbled_header_is_reported_as_invalid() {
    let bytes = file();
    let mut garbled = bytes[..16].to_vec();
    let json = b"{\"architecture\": 5}";
    garbled[12..16].copy_from_slice(&(json.len() as u32).to_le_bytes());
    garbled.extend_from_slice(json);
    let checksum = crc32fast::hash(&garbled);
    garbled.extend_from_slice(&checksum.to_le_bytes());
    assert!(matches!(from_bytes::<Cpu>(&garbled, &device()), Err(WeightsError::InvalidHeader(_))));
}

#[test]
fn non_finite_values_are_refused() {
    let bytes = file();
    let (header, _) = read_header(&bytes).unwrap();
    let data_start = bytes.len() - 4 - 2 * header.parameter_count();
    let mut poisoned = bytes[..bytes.len() - 4].to_vec();
    poisoned[data_start..data_start + 2].copy_from_slice(&half::f16::NAN.to_le_bytes());
    let checksum = crc32fast::hash(&poisoned);
    poisoned.extend_from_slice(&checksum.to_le_bytes());
    assert!(matches!(from_bytes::<Cpu>(&poisoned, &device()), Err(WeightsError::NonFinite(_))));
}

/// The header edits of the hostile-input probe that made `info` or `denoise`
/// panic, abort on a multi-GiB allocation or hang, each with the typed error
/// it gets now. Every one has a valid checksum, so it reaches the checks
/// behind it.
#[test]
fn hostile_headers_get_typed_errors_naming_the_field() {
    use realdenoise::model::ConfigError;
    let bytes = file();
    let edits: Vec<(&str, Box<dyn FnOnce(&mut Header)>, &str)> = vec![
        // The probe's "range start index 18446744073709551614" panic: a shape
        // whose product overflows made the data length wrap.
        ("overflowing shape", Box::new(|h| h.tensors[0].shape = vec![1 << 62, 8, 1, 1]), "tensors[0].shape"),
        ("too many parameters", Box::new(|h| h.tensors[0].shape = vec![1 << 20, 1 << 10]), "tensors[0].shape"),
        ("rank 0", Box::new(|h| h.tensors[1].shape = vec![]), "tensors[1].shape"),
        ("a zero side", Box::new(|h| h.tensors[1].shape = vec![8, 0]), "tensors[1].shape"),
        ("5,000 tensors", Box::new(|h| h.tensors = vec![h.tensors[0].clone(); 5000]), "tensors"),
        ("no recommended steps", Box::new(|h| h.training.default_steps = 0), "training.default_steps"),
        ("more steps than T", Box::new(|h| h.training.default_steps = 21), "training.default_steps"),
    ];
    for (case, edit, field) in edits {
        match read_header(&with_header(&bytes, edit)) {
            Err(error @ WeightsError::OutOfRange { .. }) => {
                assert!(error.to_string().contains(field), "{case}: {error}")
            }
            other => panic!("{case}: expected OutOfRange naming {field}, got {:?}", other.map(|(h, _)| h.model)),
        }
    }

    let configs: Vec<(&str, Box<dyn FnOnce(&mut Header)>, ConfigError)> = vec![
        // The probe's 10 GiB allocation abort: 10^9 channels.
        (
            "10^9 base channels",
            Box::new(|h| h.model.base_channels = 1_000_000_000),
            ConfigError::TooLarge { field: "base_channels", value: 1_000_000_000, max: 512 },
        ),
        // The probe's hang at 3.8 GB: the cost model walked 10^9 blocks.
        (
            "10^9 blocks per level",
            Box::new(|h| h.model.blocks_per_level = 1_000_000_000),
            ConfigError::TooLarge { field: "blocks_per_level", value: 1_000_000_000, max: 16 },
        ),
        (
            "overflowing multiplier",
            Box::new(|h| h.model.channel_multipliers = vec![1, usize::MAX]),
            ConfigError::TooLarge { field: "channel_multipliers x base_channels", value: usize::MAX, max: 2048 },
        ),
        (
            "1,000 levels",
            Box::new(|h| h.model.channel_multipliers = vec![1; 1000]),
            ConfigError::TooDeep { levels: 1000, downsamplings: 999 },
        ),
        (
            "T = 10^12",
            Box::new(|h| h.model.timesteps = 1_000_000_000_000),
            ConfigError::TooLarge { field: "timesteps", value: 1_000_000_000_000, max: 1000 },
        ),
        ("grey", Box::new(|h| h.model.image_channels = 1), ConfigError::NotRgb(1)),
        // An odd width left the step embedding one channel short at the first forward pass.
        ("odd base channels", Box::new(|h| h.model.base_channels = 9), ConfigError::OddBaseChannels(9)),
        ("a 3x3 pixel unshuffle", Box::new(|h| h.model.pixel_unshuffle = Some(3)), ConfigError::PixelUnshuffle(3)),
        // Groups that divide every level but not the head's output.
        (
            "groups that split no head",
            Box::new(|h| {
                h.model.base_channels = 6;
                h.model.channel_multipliers = vec![2, 4];
                h.model.norm_groups = 4;
            }),
            ConfigError::Groups { channels: 6, groups: 4 },
        ),
    ];
    for (case, edit, expected) in configs {
        match from_bytes::<Cpu>(&with_header(&bytes, edit), &device()) {
            Err(WeightsError::InvalidConfig(error)) => assert_eq!(error, expected, "{case}"),
            other => panic!("{case}: expected InvalidConfig({expected}), got {:?}", other.map(|_| ())),
        }
    }
}

/// Header lengths past the file or past the 1 MiB limit.
#[test]
fn header_lengths_are_bounded() {
    let bytes = file();
    let mut huge = bytes.clone();
    huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(read_header(&huge), Err(WeightsError::Truncated { .. })));

    // A complete file whose JSON header is padded past 1 MiB.
    let (header, data) = read_header(&bytes).unwrap();
    let mut json = serde_json::to_vec(&header).unwrap();
    json.resize((1 << 20) + 1, b' ');
    let mut padded = bytes[..12].to_vec();
    padded.extend_from_slice(&(json.len() as u32).to_le_bytes());
    padded.extend_from_slice(&json);
    padded.extend_from_slice(data);
    let checksum = crc32fast::hash(&padded);
    padded.extend_from_slice(&checksum.to_le_bytes());
    match read_header(&padded) {
        Err(WeightsError::OutOfRange { field, .. }) => assert_eq!(field, "header length"),
        other => panic!("expected OutOfRange, got {:?}", other.map(|(h, _)| h.model)),
    }
}

/// A refused header in a file that fails its checksum is corruption, not a
/// hostile header: a flipped bit inside the JSON is reported as such.
#[test]
fn a_flipped_bit_in_a_header_number_is_corruption() {
    let bytes = file();
    let text = String::from_utf8_lossy(&bytes[16..]).into_owned();
    let position = 16 + text.find("\"timesteps\":20").unwrap() + "\"timesteps\":".len();
    let mut damaged = bytes.clone();
    damaged[position] = b'9'; // 20 -> 90, still valid JSON and a valid config
    assert!(matches!(read_header(&damaged), Err(WeightsError::ChecksumMismatch { .. })));
    damaged[position..position + 2].copy_from_slice(b"0 "); // T = 0: refused config, bad checksum
    assert!(matches!(read_header(&damaged), Err(WeightsError::ChecksumMismatch { .. })));
}

#[test]
fn files_from_before_the_pixel_unshuffle_field_still_load_as_full_resolution_networks() {
    // The shipped weights were written before the stem existed: their header
    // has no `pixel_unshuffle`, which must read as 1 (no unshuffle).
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/realdenoise.rdnz");
    let bytes = std::fs::read(&path).expect("the shipped weights");
    let (header, _) = read_header(&bytes).expect("the shipped header reads");
    assert_eq!(header.model.pixel_unshuffle, None);
    assert_eq!(header.model.unshuffle_factor(), 1);
    let json = String::from_utf8_lossy(&bytes[16..16 + u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize]).to_string();
    assert!(!json.contains("pixel_unshuffle"), "the shipped header is the old kind");
    from_bytes::<Cpu>(&bytes, &device()).expect("the shipped weights load");
    // A file with the stem round-trips it.
    let config = small_config().with_pixel_unshuffle(Some(2));
    let model = config.init::<Cpu>(&device()).unwrap();
    let file = to_bytes(&model, &config, &TrainingMetadata::untrained());
    let (header, _) = read_header(&file).expect("reads");
    assert_eq!(header.model.unshuffle_factor(), 2);
    from_bytes::<Cpu>(&file, &device()).expect("a stem network loads");
}
