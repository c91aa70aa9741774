//! What the browser gets: uPlot (embedded at build time from
//! web/node_modules, see build.rs) and our own scripts from web/src.

/// uPlot's minified IIFE build; empty when it was not installed at build time.
pub const UPLOT_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/uplot.js"));
pub const UPLOT_CSS: &str = include_str!(concat!(env!("OUT_DIR"), "/uplot.css"));
/// uPlot's MIT license, carried in every page that carries uPlot.
pub const UPLOT_LICENSE: &str = include_str!(concat!(env!("OUT_DIR"), "/uplot-license.txt"));
/// Our chart code (shared by report.html and the dashboard).
pub const CHARTS_JS: &str = include_str!("../../../web/src/charts.js");
pub const REPORT_JS: &str = include_str!("../../../web/src/report.js");
pub const LIVE_JS: &str = include_str!("../../../web/src/live.js");

/// Whether the interactive charts were built in.
pub fn charts_available() -> bool {
    !UPLOT_JS.is_empty()
}

/// The scripts a page needs, inline, in order: uPlot (with its license),
/// the charts, then `entry`. `</script` cannot appear inside: JSON and our
/// sources are checked for it where they are built.
pub fn inline_scripts(entry: &str) -> String {
    format!(
        "<script>/*! uPlot (MIT license):\n{}*/\n{}</script>\n<script>{}</script>\n<script>{}</script>\n",
        UPLOT_LICENSE.replace("*/", "* /"),
        UPLOT_JS,
        CHARTS_JS,
        entry
    )
}

/// Embeds JSON in a `<script type="application/json">`: `<` is escaped so
/// no string in the data can close the element.
pub fn json_script(id: &str, json: &str) -> String {
    format!("<script id=\"{id}\" type=\"application/json\">{}</script>\n", json.replace('<', "\\u003c"))
}
