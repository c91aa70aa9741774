//! Embeds the browser charts' library (uPlot, installed from npm into
//! web/node_modules by scripts/build-web.sh, pinned by web/package-lock.json)
//! into the coordinator: report.html carries it inline and the live
//! dashboard serves it. Not installed: empty files here, and report.html
//! keeps its static SVG charts while `--ui` says the dashboard needs it.
//! Nothing is fetched from here: installing is the script's job.
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let web = manifest.join("../web");
    // A directory: cargo looks at every file under it (web/src, the
    // lockfile, and node_modules once installed).
    println!("cargo:rerun-if-changed={}", web.display());
    let uplot = web.join("node_modules/uplot");
    let files =
        [("dist/uPlot.iife.min.js", "uplot.js"), ("dist/uPlot.min.css", "uplot.css"), ("LICENSE", "uplot-license.txt")];
    let all_there = files.iter().all(|(from, _)| uplot.join(from).is_file());
    for (from, to) in files {
        let text =
            if all_there { std::fs::read_to_string(uplot.join(from)).unwrap_or_default() } else { String::new() };
        std::fs::write(out.join(to), text).expect("write OUT_DIR");
    }
    if !all_there {
        println!(
            "cargo:warning=web/node_modules/uplot is not installed (scripts/build-web.sh): report.html keeps static charts, --ui is off"
        );
    }
}
