//! Every scenario's HTML report rendered in a real browser: headless Chromium, its
//! console logged. A console message (the page has no script, so any message is an error
//! or a refused load reported by the Content-Security-Policy) or a blank screenshot fails.
//!
//! Ignored by `cargo test`, which needs only the Rust toolchain; `.ci/run` installs
//! Debian's `chromium` and runs them with `cargo test --test it browser -- --ignored`.
//! `CHROMIUM` names another browser binary.

use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string())
}

/// What Chromium made of a page: its console lines, and the screenshot's share of
/// pixels that differ from the page's white background.
struct Rendered {
    console: Vec<String>,
    inked: f64,
}

/// Renders `page` headless into `dir`, as the machine's notes say Chromium must run here
/// (no sandbox as root, no background networking on a closed network).
fn render(page: &Path, dir: &Path, name: &str) -> Rendered {
    let shot = dir.join(format!("{name}.png"));
    let profile = dir.join(format!("{name}-profile"));
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1100,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (install Debian's chromium, or set CHROMIUM)", chromium()));
    let log = String::from_utf8_lossy(&out.stderr);
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Content Security Policy"))
        .map(str::to_string)
        .collect();
    Rendered {
        console,
        inked: inked(&shot),
    }
}

/// The share of the screenshot's pixels that are not the background's white.
fn inked(png: &Path) -> f64 {
    let file = std::fs::File::open(png).unwrap_or_else(|e| panic!("{}: no screenshot: {e}", png.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let total = pixels.len() / channels;
    let inked = pixels
        .chunks(channels)
        .filter(|p| p.iter().take(3).any(|&c| c < 235))
        .count();
    inked as f64 / total.max(1) as f64
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kafkasim-browser-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

#[test]
#[ignore = "needs Chromium: .ci/run installs it and runs this"]
fn every_scenario_renders_in_chromium_without_a_console_message() {
    let dir = scratch("scenarios");
    let mut failures = Vec::new();
    for path in crate::scenario_files() {
        let name = path.file_stem().expect("named").to_string_lossy().into_owned();
        let s = kafkasim::scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let report = crate::run(&s);
        let page = dir.join(format!("{name}.html"));
        std::fs::write(&page, kafkasim::report::html::render(&report)).expect("writable");
        let r = render(&page, &dir, &name);
        if !r.console.is_empty() {
            failures.push(format!("{name}: {}", r.console.join("\n  ")));
        }
        if r.inked < 0.01 {
            failures.push(format!("{name}: the screenshot is blank ({:.4} of it inked)", r.inked));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The check can fail: a page that loads from elsewhere is refused and reported, and an
/// empty page is blank.
#[test]
#[ignore = "needs Chromium: .ci/run installs it and runs this"]
fn chromium_reports_a_refused_load_and_a_blank_page() {
    let dir = scratch("controls");
    let policy = kafkasim::report::html::CONTENT_SECURITY_POLICY;
    let loads = dir.join("loads.html");
    std::fs::write(
        &loads,
        format!(
            "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\"></head>\
             <body><p>text</p><img src=\"https://example.com/x.png\"><img src=\"beside.png\"></body></html>"
        ),
    )
    .expect("writable");
    let r = render(&loads, &dir, "loads");
    assert_eq!(r.console.len(), 2, "each refused load is reported: {:?}", r.console);
    let blank = dir.join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").expect("writable");
    let r = render(&blank, &dir, "blank");
    assert!(r.console.is_empty(), "{:?}", r.console);
    assert!(r.inked < 0.01, "an empty page is {:.4} inked", r.inked);
    let _ = std::fs::remove_dir_all(&dir);
}
