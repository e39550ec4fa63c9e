//! End to end: the real `modelmap` binary in a real X server (Xvfb) on the software Vulkan driver,
//! driven with xdotool, checked by screenshot.
//!
//! Needs `Xvfb`, `xdotool` and ImageMagick's `import` (Debian: `apt-get install -y
//! --no-install-recommends mesa-vulkan-drivers libvulkan1 xvfb xauth xdotool imagemagick libxcursor1
//! libxi6 libxkbcommon-x11-0 libx11-xcb1 libxrandr2`). Missing tools fail the test; set
//! `MODELMAP_SKIP_GPU_TESTS=1` to skip it on a machine that cannot run it. Screenshots are kept in
//! the target's test tmp dir (`e2e_window/*.png`) to look at.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on broken fixtures by design"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct KillOnDrop(Child, &'static str);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SIGTERM first: a SIGKILLed Xvfb leaves its /tmp/.X<n>-lock and socket behind.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = self.1;
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(display: &str, args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .env("DISPLAY", display)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Shot {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Shot {
    fn take(display: &str, path: &Path) -> Shot {
        // PNG24: keep RGB even when the screen is uniformly grey.
        let target = format!("PNG24:{}", path.display());
        run(display, &["import", "-window", "root", &target]);
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        let data = &buf[..info.buffer_size()];
        let rgb = match info.color_type {
            png::ColorType::Rgb => data.to_vec(),
            png::ColorType::Rgba => data
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
            png::ColorType::Grayscale => data.iter().flat_map(|&g| [g, g, g]).collect(),
            png::ColorType::GrayscaleAlpha => data
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0]])
                .collect(),
            other => panic!("unexpected PNG colour type {other:?}"),
        };
        Shot {
            width: info.width as usize,
            height: info.height as usize,
            rgb,
        }
    }

    fn px(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// The canvas part of the window: inside the side and top/bottom panels.
#[derive(Clone, Copy, Debug)]
struct Area {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
}

fn distinct_colours(s: &Shot, a: Area) -> usize {
    let mut set = std::collections::HashSet::new();
    for y in (a.y0..a.y1).step_by(2) {
        for x in (a.x0..a.x1).step_by(2) {
            set.insert(s.px(x, y));
        }
    }
    set.len()
}

/// Screenshots every 300 ms until two in a row agree on the canvas (at most 8 s), the last one.
fn settle(display: &str, path: &Path, area: Area) -> Shot {
    let t0 = Instant::now();
    let mut prev = Shot::take(display, path);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let cur = Shot::take(display, path);
        if changed_fraction(&prev, &cur, area) < 0.0005 || t0.elapsed() > Duration::from_secs(8) {
            return cur;
        }
        prev = cur;
    }
}

fn changed_fraction(a: &Shot, b: &Shot, area: Area) -> f64 {
    let mut changed = 0usize;
    let mut total = 0usize;
    for y in area.y0..area.y1 {
        for x in area.x0..area.x1 {
            let (p, q) = (a.px(x, y), b.px(x, y));
            let d = p
                .iter()
                .zip(q)
                .map(|(u, v)| u.abs_diff(v))
                .max()
                .unwrap_or(0);
            if d > 24 {
                changed += 1;
            }
            total += 1;
        }
    }
    changed as f64 / total.max(1) as f64
}

#[test]
fn window_draws_the_model_and_reacts_to_wheel_and_drag() {
    if std::env::var("MODELMAP_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        eprintln!("\n!!!!!!!! SKIPPED e2e_window: MODELMAP_SKIP_GPU_TESTS=1 !!!!!!!!\n");
        return;
    }
    for tool in ["Xvfb", "xdotool", "import"] {
        assert!(
            have(tool),
            "{tool} not found: apt-get install -y --no-install-recommends xvfb xauth xdotool imagemagick \
             mesa-vulkan-drivers libvulkan1 libxcursor1 libxi6 libxkbcommon-x11-0 libx11-xcb1 libxrandr2 \
             (or set MODELMAP_SKIP_GPU_TESTS=1 to skip)"
        );
    }
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e_window");
    std::fs::create_dir_all(&out_dir).unwrap();
    let runtime = tempfile::tempdir().unwrap();

    // Xvfb picks a free display itself and writes its number to stdout once it accepts
    // connections (`-displayfd`): a number of our own could collide with a display left behind by
    // an earlier run, whose stale socket would pass a readiness check.
    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Xvfb");
    let stdout = xvfb.stdout.take().expect("Xvfb stdout");
    let _xvfb = KillOnDrop(xvfb, "Xvfb");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        let _ = tx.send(line);
    });
    let n: u32 = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("Xvfb did not report a display within 20 s")
        .trim()
        .parse()
        .expect("Xvfb exited without a display number");
    let display = format!(":{n}");

    let log_path = out_dir.join("modelmap.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let app = Command::new(env!("CARGO_BIN_EXE_modelmap"))
        .env("DISPLAY", &display)
        .env("WGPU_BACKEND", "vulkan")
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("RUST_LOG", "modelmap=info")
        .env("MODELMAP_FRAME_LOG", "1")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start modelmap");
    let mut app = KillOnDrop(app, "modelmap");

    let found = Command::new("timeout")
        .args([
            "30",
            "xdotool",
            "search",
            "--sync",
            "--onlyvisible",
            "--name",
            "modelmap",
        ])
        .env("DISPLAY", &display)
        .output()
        .unwrap();
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        found.status.success(),
        "no modelmap window appeared; log:\n{}",
        log_text()
    );
    let win = String::from_utf8_lossy(&found.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let geo = run(&display, &["xdotool", "getwindowgeometry", "--shell", &win]);
    let field = |k: &str| -> usize {
        geo.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0)
            .max(0) as usize
    };
    let (wx, wy, ww, wh) = (field("X"), field("Y"), field("WIDTH"), field("HEIGHT"));
    assert!(ww >= 600 && wh >= 400, "window too small: {geo}");
    // Inside the top bar, status bar and inspector (340 points on the right).
    let area = Area {
        x0: wx + 20,
        y0: wy + 90,
        x1: (wx + ww).saturating_sub(380).min(1279),
        y1: (wy + wh).saturating_sub(90).min(799),
    };

    // Wait until the model is drawn (the canvas holds more than a flat background).
    let first_path = out_dir.join("1_start.png");
    let t0 = Instant::now();
    let first = loop {
        if let Ok(Some(status)) = app.0.try_wait() {
            panic!("modelmap exited early ({status}); log:\n{}", log_text());
        }
        let s = Shot::take(&display, &first_path);
        if distinct_colours(&s, area) > 8 {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the canvas stayed blank; see {}; log:\n{}",
            first_path.display(),
            log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!((first.width, first.height), (1280, 800));
    std::thread::sleep(Duration::from_millis(500));
    let first = Shot::take(&display, &first_path);
    assert!(
        distinct_colours(&first, area) > 8,
        "first screenshot is blank"
    );
    // Left alone, the window stops drawing: it once redrew back to back forever (a full frame at
    // the display rate, a core busy on a software adapter, for a picture that did not change).
    let frames = || log_text().matches("frame_ms").count();
    let before = frames();
    std::thread::sleep(Duration::from_millis(2000));
    let idle = frames() - before;
    assert!(idle <= 10, "{idle} frames drawn in 2 s without input");

    // Zoom in over the canvas centre, then drag.
    let cx = (area.x0 + area.x1) / 2;
    let cy = (area.y0 + area.y1) / 2;
    run(
        &display,
        &["xdotool", "mousemove", &cx.to_string(), &cy.to_string()],
    );
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..4 {
        run(&display, &["xdotool", "click", "4"]);
        std::thread::sleep(Duration::from_millis(120));
    }
    // Smooth zoom and fades take a few frames, slow ones on a loaded machine: wait for the picture
    // to settle.
    let zoomed = settle(&display, &out_dir.join("2_zoomed.png"), area);
    let zoom_change = changed_fraction(&first, &zoomed, area);
    run(&display, &["xdotool", "mousedown", "1"]);
    for k in 1..=6 {
        let x = cx + 25 * k;
        let y = cy + 12 * k;
        run(
            &display,
            &["xdotool", "mousemove", &x.to_string(), &y.to_string()],
        );
        std::thread::sleep(Duration::from_millis(60));
    }
    run(&display, &["xdotool", "mouseup", "1"]);
    let dragged = settle(&display, &out_dir.join("3_dragged.png"), area);
    let drag_change = changed_fraction(&zoomed, &dragged, area);
    eprintln!(
        "e2e_window: canvas {area:?}, zoom changed {:.1} % of pixels, drag {:.1} %; screenshots in {}",
        zoom_change * 100.0,
        drag_change * 100.0,
        out_dir.display()
    );
    assert!(
        zoom_change > 0.02,
        "wheel did not change the view ({:.3} %)",
        zoom_change * 100.0
    );
    assert!(
        drag_change > 0.02,
        "drag did not change the view ({:.3} %)",
        drag_change * 100.0
    );
    // `M` opens the matrix view, `A` the anomaly panel (its scan runs in the background): each
    // window covers part of the canvas.
    let mut before = dragged;
    for (key, name, what) in [
        ("m", "4_matrix.png", "matrix view"),
        ("a", "5_anomalies.png", "anomaly panel"),
    ] {
        run(&display, &["xdotool", "windowfocus", "--sync", &win]);
        run(&display, &["xdotool", "type", "--window", &win, key]);
        std::thread::sleep(Duration::from_millis(1500));
        let shot = Shot::take(&display, &out_dir.join(name));
        let change = changed_fraction(&before, &shot, area);
        eprintln!(
            "e2e_window: {what} changed {:.1} % of the canvas",
            change * 100.0
        );
        assert!(
            change > 0.02,
            "key {key} did not open the {what} ({:.3} %)",
            change * 100.0
        );
        before = shot;
    }
    if let Ok(Some(status)) = app.0.try_wait() {
        panic!(
            "modelmap exited during the test ({status}); log:\n{}",
            log_text()
        );
    }
}
