//! Tiles cover the image, blend without seams, and match whole-image output.

use crate::common;

use burn::tensor::backend::Backend;
use common::{device, photo_like, Cpu, Identity};
use image::RgbaImage;
use realdenoise::denoiser::{block_on, denoise_in_place, Unobserved};
use realdenoise::tiling::{tile_side_for_budget, Overlap, PlanarImage, TileGrid, TilingError};
use realdenoise::denoiser::{resolve_tile_size, DenoiseError};
use realdenoise::{DenoiseOptions, UNetConfig};

const SMALL_OVERLAP: Overlap = Overlap { margin: 8, feather: 8 };

#[test]
fn tiles_cover_every_pixel_with_positive_weight_and_aligned_origins() {
    for (width, height, tile) in [(1000, 37, 120), (97, 301, 64), (64, 64, 64), (513, 260, 136)] {
        let grid = TileGrid::new(width, height, tile, SMALL_OVERLAP, 8).unwrap();
        let mut total = vec![0.0f32; width * height];
        for t in grid.tiles() {
            assert_eq!(t.x.start % 8, 0);
            assert_eq!(t.y.start % 8, 0);
            assert!(t.x.len() <= tile && t.y.len() <= tile, "{:?} exceeds {tile}", t);
            let weights = grid.weights(t);
            for (row, y) in (t.y.start..t.y.end).enumerate() {
                for (column, x) in (t.x.start..t.x.end).enumerate() {
                    total[y * width + x] += weights[row * t.x.len() + column];
                }
            }
        }
        let least = total.iter().copied().fold(f32::INFINITY, f32::min);
        assert!(least > 0.0, "{width}x{height}/{tile}: a pixel has no weight");
        assert!(grid.len() > 1 || (width <= tile && height <= tile));
    }
}

#[test]
fn tiny_tiles_and_empty_images_are_refused() {
    assert!(matches!(TileGrid::new(100, 100, 20, SMALL_OVERLAP, 8), Err(TilingError::TileTooSmall { .. })));
    assert!(matches!(TileGrid::new(0, 100, 256, SMALL_OVERLAP, 8), Err(TilingError::EmptyImage { .. })));
}

#[test]
fn the_budget_sets_the_tile_size() {
    let config = UNetConfig::new();
    let per_pixel = config.activation_bytes_per_pixel();
    let small = tile_side_for_budget(256e6, per_pixel, Overlap::DEFAULT, 8, 2048);
    let large = tile_side_for_budget(2e9, per_pixel, Overlap::DEFAULT, 8, 2048);
    assert!(small < large);
    assert_eq!(small % 8, 0);
    assert!((small * small) as f64 * per_pixel <= 256e6);
}

#[test]
fn a_device_buffer_limit_shrinks_budget_tiles_until_the_widest_tensor_fits() {
    // lavapipe: 128 MiB per buffer. The 1 GiB budget alone picks a 1092-px
    // tile whose 48-channel decoder input (229 MB) that device cannot hold.
    let config = UNetConfig::new();
    let limit = 128 << 20;
    let unlimited = DenoiseOptions::default();
    let limited = DenoiseOptions { max_buffer_bytes: Some(limit), ..DenoiseOptions::default() };
    let widest = config.widest_tensor_bytes_per_pixel();
    let from_budget = resolve_tile_size(&config, &unlimited);
    assert_eq!(from_budget, 1092);
    assert!((from_budget * from_budget) as f64 * widest > limit as f64);
    let side = resolve_tile_size(&config, &limited);
    assert_eq!(side % config.size_multiple(), 0);
    assert!((side * side) as f64 * widest <= limit as f64, "{side} px does not fit");
    let next = side + config.size_multiple();
    assert!((next * next) as f64 * widest > limit as f64, "{side} px is not the largest that fits");
    // A generous limit leaves the budget in charge.
    let roomy = DenoiseOptions { max_buffer_bytes: Some(1 << 34), ..DenoiseOptions::default() };
    assert_eq!(resolve_tile_size(&config, &roomy), from_budget);
}

#[test]
fn an_explicit_tile_the_device_cannot_hold_is_refused_before_any_work() {
    let config = UNetConfig::new().with_base_channels(8).with_norm_groups(1);
    let model = config.init::<Cpu>(&device()).unwrap();
    let limit = 16 << 20;
    let options = DenoiseOptions { steps: 1, tile_size: Some(512), max_buffer_bytes: Some(limit), ..DenoiseOptions::default() };
    let started = std::cell::Cell::new(false);
    let mut observer = realdenoise::denoiser::Callback(|_| {
        started.set(true);
        Err(realdenoise::denoiser::Cancelled)
    });
    let mut large = PlanarImage::new(600, 400, vec![0.5; 3 * 600 * 400]);
    let result = block_on(denoise_in_place(&model, &config, &device(), &mut large, &options, &mut observer));
    match result {
        Err(DenoiseError::TileTooLarge { tile, needed_mib, limit_mib, largest }) => {
            assert_eq!(tile, 512);
            // 512 x 400 pixels x 96 bytes (8 + 16 channels of f32).
            assert!((needed_mib - 512.0 * 400.0 * 96.0 / (1 << 20) as f64).abs() < 1e-9, "{needed_mib}");
            assert_eq!(limit_mib, 16.0);
            assert!((largest * largest) as f64 * config.widest_tensor_bytes_per_pixel() <= limit as f64);
        }
        other => panic!("expected TileTooLarge, got {other:?}"),
    }
    assert!(!started.get(), "work started before the refusal");
    // The same tile on an image small enough for the device is accepted.
    let mut small = PlanarImage::new(200, 200, vec![0.5; 3 * 200 * 200]);
    let result = block_on(denoise_in_place(&model, &config, &device(), &mut small, &options, &mut observer));
    assert!(matches!(result, Err(DenoiseError::Cancelled)), "{result:?}");
}

#[test]
fn tiling_an_identity_model_reproduces_the_image_bit_exactly() {
    let (width, height) = (203, 150);
    let planes = photo_like(width, height, 11);
    let mut image = RgbaImage::new(width as u32, height as u32);
    for (x, y, pixel) in image.enumerate_pixels_mut() {
        let (x, y) = (x as usize, y as usize);
        for channel in 0..3 {
            pixel[channel] = (planes[(channel * height + y) * width + x] * 255.0).round() as u8;
        }
        pixel[3] = ((x * 7 + y) % 256) as u8;
    }
    let original = image.clone();
    let options = DenoiseOptions { tile_size: Some(64), overlap: SMALL_OVERLAP, ..DenoiseOptions::default() };
    let config = UNetConfig::new();
    block_on(denoise_in_place(&Identity, &config, &device(), &mut image, &options, &mut Unobserved)).unwrap();
    assert_eq!(image, original);
}

#[test]
fn tiled_and_whole_image_outputs_of_a_random_network_agree_within_one_level() {
    let (width, height) = (400, 300);
    let config = UNetConfig::new();
    Cpu::seed(&device(), 17);
    let model = config.init::<Cpu>(&device()).unwrap();
    let input = PlanarImage::new(width, height, photo_like(width, height, 5));

    let mut whole = input.clone();
    let whole_options = DenoiseOptions { steps: 2, tile_size: Some(1024), ..DenoiseOptions::default() };
    block_on(denoise_in_place(&model, &config, &device(), &mut whole, &whole_options, &mut Unobserved)).unwrap();

    let mut tiled = input.clone();
    let tiled_options = DenoiseOptions { steps: 2, tile_size: Some(240), ..DenoiseOptions::default() };
    block_on(denoise_in_place(&model, &config, &device(), &mut tiled, &tiled_options, &mut Unobserved)).unwrap();

    let worst = whole.data.iter().zip(&tiled.data).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    let changed = whole.data.iter().zip(&input.data).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    println!("tiled vs whole: max difference {worst} ({:.3}/255); the network changed pixels by up to {changed}", worst * 255.0);
    assert!(changed > 0.05, "the random network barely changes the image ({changed}): the test would prove nothing");
    assert!(worst < 1.0 / 255.0, "tiled output differs from whole-image output by {worst}");
}

#[test]
fn the_blend_buffer_holds_one_row_of_tiles_whatever_the_image_height() {
    use realdenoise::tiling::{BandBlender, TiledImage};
    let (width, height, tile) = (90, 2000, 64);
    let planes = photo_like(width, height, 2);
    let mut image = PlanarImage::new(width, height, planes.clone());
    let grid = TileGrid::new(width, height, tile, SMALL_OVERLAP, 8).unwrap();
    let mut blender = BandBlender::new(width);
    for (index, &row) in grid.rows.iter().enumerate() {
        for &column in &grid.columns {
            let t = realdenoise::tiling::Tile { x: column, y: row };
            blender.add(t, &image.read_tile(t), &grid.weights(t));
        }
        let until = grid.rows.get(index + 1).map_or(height, |next| next.start);
        blender.flush(&mut image, until);
    }
    assert!(grid.rows.len() > 40);
    assert!(blender.peak_rows() < tile + 8, "the band grew to {} rows", blender.peak_rows());
    let worst = image.data.iter().zip(&planes).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-6, "blending identity tiles changed the image by {worst}");
}

#[test]
fn a_pooled_plan_cuts_smaller_tiles_only_when_the_workers_finish_sooner() {
    use realdenoise::denoiser::{plan_tiles, MIN_POOLED_TILE_SIDE};
    let config = UNetConfig::new();
    // The browser's CPU budget: 544-pixel tiles.
    let options = DenoiseOptions { memory_budget: 256 << 20, ..DenoiseOptions::default() };
    let side = resolve_tile_size(&config, &options);
    assert_eq!(side, 544);
    let makespan = |grid: &TileGrid, workers: usize| {
        let widest = grid.columns.iter().map(|s| s.len()).max().unwrap();
        let tallest = grid.rows.iter().map(|s| s.len()).max().unwrap();
        grid.len().div_ceil(workers) * widest * tallest
    };
    // One worker: exactly the single-run grid.
    let single = plan_tiles(&config, &options, 512, 512, 1).unwrap();
    assert_eq!(single, TileGrid::new(512, 512, side, Overlap::DEFAULT, config.size_multiple()).unwrap());
    assert_eq!(single.len(), 1);
    // Two workers on a one-tile photo: four 312-pixel tiles, two each,
    // 0.74x the single tile's time despite the overlap.
    let pooled = plan_tiles(&config, &options, 512, 512, 2).unwrap();
    assert_eq!(pooled.len(), 4);
    assert_eq!(pooled.columns.iter().map(|s| s.len()).max(), Some(312));
    assert_eq!(makespan(&pooled, 2) as f64 / makespan(&single, 1) as f64, 312.0 * 312.0 * 2.0 / (512.0 * 512.0));
    for (width, height, workers) in [(1600, 1200, 2), (4000, 3000, 8), (300, 2000, 4), (96, 96, 16)] {
        let alone = plan_tiles(&config, &options, width, height, 1).unwrap();
        let grid = plan_tiles(&config, &options, width, height, workers).unwrap();
        assert!(makespan(&grid, workers) <= makespan(&alone, workers), "{width}x{height}: the plan is slower");
        for tile in grid.tiles() {
            assert!(tile.x.len() <= side && tile.y.len() <= side);
            assert!(grid.len() == alone.len() || tile.x.len().max(tile.y.len()) >= MIN_POOLED_TILE_SIDE.min(width.max(height)));
            // The per-axis weights the browser pool blends with are the grid's own.
            let (along_x, along_y) = (grid.column_weights(tile.x), grid.row_weights(tile.y));
            let product: Vec<f32> = along_y.iter().flat_map(|wy| along_x.iter().map(move |wx| wx * wy)).collect();
            assert_eq!(product, grid.weights(tile));
        }
    }
    // An explicit tile size is kept.
    let explicit = DenoiseOptions { tile_size: Some(512), ..options.clone() };
    assert_eq!(plan_tiles(&config, &explicit, 512, 512, 4).unwrap().len(), 1);
}
