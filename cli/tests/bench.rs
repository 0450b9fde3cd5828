//! `realdenoise bench` end to end on the CPU backend: numbers, never timings.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_realdenoise")).args(args).output().expect("the binary runs")
}

fn weights() -> &'static Path {
    static WEIGHTS: OnceLock<PathBuf> = OnceLock::new();
    WEIGHTS.get_or_init(|| {
        let directory = std::env::temp_dir().join(format!("realdenoise-bench-tests-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("untrained.rdnz");
        let output = run(&["init-weights", path.to_str().unwrap(), "--seed", "5"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        path
    })
}

fn number(value: &serde_json::Value, key: &str) -> f64 {
    value[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {value}"))
}

#[test]
fn bench_writes_json_and_markdown_with_the_model_flop_count() {
    let directory = tempfile::tempdir().unwrap();
    let json = directory.path().join("bench.json");
    let markdown = directory.path().join("bench.md");
    let output = run(&[
        "bench", "--backend", "cpu", "--sizes", "32x32,36x20", "--steps", "1,2", "--repeats", "2", "--warmup", "0",
        "--weights", weights().to_str().unwrap(),
        "--json", json.to_str().unwrap(), "--markdown", markdown.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let flops_per_pixel = number(&report, "flops_per_pixel");
    // 249.3 GFLOP per megapixel for the default network (README).
    assert!((flops_per_pixel * 1e6 / 1e9 - 249.3).abs() < 0.05, "{flops_per_pixel}");
    assert_eq!(report["parameters"].as_u64(), Some(889_187));
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "two sizes x two step counts");
    for result in results {
        let (width, height, steps) = (number(result, "width"), number(result, "height"), number(result, "steps"));
        let times = result["times_s"].as_array().unwrap();
        assert_eq!(times.len(), 2);
        assert!(times.iter().all(|t| t.as_f64().unwrap() > 0.0));
        assert!(number(result, "median_s") > 0.0);
        assert!(number(result, "min_s") <= number(result, "median_s") && number(result, "median_s") <= number(result, "max_s"));
        assert_eq!(number(result, "tiles"), 1.0);
        // One tile, padded to a multiple of 4 (36x20 needs none, 32x32 none).
        let useful = width * height * flops_per_pixel * steps;
        assert!((number(result, "useful_flops") - useful).abs() <= 1e-6 * useful);
        assert!((number(result, "executed_flops") - useful).abs() <= 1e-6 * useful);
        let gflops = useful / number(result, "median_s") / 1e9;
        assert!((number(result, "achieved_gflops") - gflops).abs() <= 1e-6 * gflops);
        let per_step_mp = number(result, "median_s") / steps / (width * height / 1e6);
        assert!((number(result, "s_per_step_per_mp") - per_step_mp).abs() <= 1e-9 * per_step_mp);
        if cfg!(target_os = "linux") {
            assert!(number(result, "peak_rss_mib") > 1.0);
        }
    }
    let table = std::fs::read_to_string(&markdown).unwrap();
    assert!(table.contains("| cpu | f32 | 32x32 | 1 |"), "{table}");
    assert!(table.contains("| cpu | f32 | 36x20 | 2 |"), "{table}");
}

#[test]
fn bench_pads_odd_sizes_in_the_executed_flop_count() {
    let output = run(&[
        "bench", "--single", "--backend", "cpu", "--sizes", "30x18", "--steps", "1", "--repeats", "1", "--warmup", "0",
        "--weights", weights().to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let line = String::from_utf8(output.stdout).unwrap();
    let result: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    let ratio = number(&result, "executed_flops") / number(&result, "useful_flops");
    // 30x18 runs padded to 32x20.
    assert!((ratio - (32.0 * 20.0) / (30.0 * 18.0)).abs() < 1e-9, "{ratio}");
}

#[test]
fn reference_dump_writes_npy_files_of_the_right_shape() {
    let directory = tempfile::tempdir().unwrap();
    let output = run(&["bench", "--reference-dump", directory.path().to_str().unwrap(), "--weights", weights().to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for (name, count) in [("x_t.npy", 3 * 64 * 96), ("t.npy", 1), ("network.npy", 3 * 64 * 96), ("sample4.npy", 3 * 64 * 96)] {
        let bytes = std::fs::read(directory.path().join(name)).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "{name}");
        let header_length = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_length) % 64, 0, "{name}: header is aligned");
        let header = std::str::from_utf8(&bytes[10..10 + header_length]).unwrap();
        assert!(header.contains("'descr': '<f4'"), "{header}");
        assert_eq!(bytes.len() - 10 - header_length, 4 * count, "{name}");
        let values: Vec<f32> = bytes[10 + header_length..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert!(values.iter().all(|v| v.is_finite()), "{name}");
        if name == "sample4.npy" {
            assert!(values.iter().all(|v| (0.0..=1.0).contains(v)), "the pipeline clamps its output");
        }
    }
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(directory.path().join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["steps"].as_u64(), Some(4));
    assert_eq!(meta["schedule"].as_array().unwrap().len(), 4);
}
