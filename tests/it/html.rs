//! The HTML report, checked without a browser: well-formed, self-contained, every chart
//! there. `browser.rs` renders it in Chromium.

use kafkasim::report::Report;

/// Elements that have no closing tag in HTML.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
];

/// Whether every element of `html` is closed in order. Returns the first problem.
pub fn well_formed(html: &str) -> Result<(), String> {
    let mut open: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix("!--") {
            let end = after.find("-->").ok_or("an unclosed comment")?;
            rest = &after[end + 3..];
            continue;
        }
        let end = rest.find('>').ok_or("a tag without '>'")?;
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim();
            match open.pop() {
                Some(top) if top == name => {}
                Some(top) => return Err(format!("</{name}> closes <{top}>")),
                None => return Err(format!("</{name}> closes nothing")),
            }
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if name.is_empty() {
            return Err(format!("a stray '<' before {:?}", &tag[..tag.len().min(20)]));
        }
        if tag.ends_with('/') || VOID.contains(&name.as_str()) {
            continue;
        }
        if name == "style" || name == "script" {
            let close = format!("</{name}>");
            let end = rest.find(&close).ok_or(format!("<{name}> never closes"))?;
            rest = &rest[end + close.len()..];
            continue;
        }
        open.push(name);
    }
    match open.last() {
        Some(top) => Err(format!("<{top}> never closes")),
        None => Ok(()),
    }
}

/// Whether `html` could reach anything outside itself: a URL other than SVG's namespace,
/// a `src`, an `href` that is not a link within the page, a CSS `url(` or `@import`.
pub fn self_contained(html: &str) -> Result<(), String> {
    let without_namespace = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for needle in [
        "http://", "https://", "//cdn", "src=", "url(", "@import", "<script", "<link",
    ] {
        if let Some(i) = without_namespace.find(needle) {
            let from = i.saturating_sub(40);
            let context: String = without_namespace[from..].chars().take(100).collect();
            return Err(format!("{needle:?} in {context:?}"));
        }
    }
    for (i, _) in html.match_indices("href=\"") {
        let value = &html[i + 6..];
        if !value.starts_with('#') {
            return Err(format!("a link out of the page: {:?}", &value[..value.len().min(60)]));
        }
    }
    let policy = format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
        kafkasim::report::html::CONTENT_SECURITY_POLICY
    );
    if !html.contains(&policy) {
        return Err("no Content-Security-Policy".to_string());
    }
    Ok(())
}

/// Whether every section and chart the report calls for is in `html`: the checks, the
/// timeline, a swimlane picture per partition, four charts per producer (three without
/// errors), a lag chart and an ownership chart per group that had a generation, the
/// logs and the broker grid.
pub fn complete(html: &str, r: &Report) -> Result<(), String> {
    for id in ["checks", "timeline", "partitions", "logs", "brokers"] {
        if !html.contains(&format!("id=\"{id}\"")) {
            return Err(format!("no section {id}"));
        }
    }
    let lanes = html.matches("<svg class=\"swimlanes\"").count();
    if lanes != r.series.partitions.len() {
        return Err(format!(
            "{lanes} swimlane pictures for {} partitions",
            r.series.partitions.len()
        ));
    }
    for p in &r.series.producers {
        let at = html
            .find(&format!("id=\"producer-{}\"", p.name))
            .ok_or(format!("no section for producer {}", p.name))?;
        let section = &html[at..];
        let section = &section[..section.find("<h3").unwrap_or(section.len())];
        let charts = section.matches("<svg ").count();
        let want = if p.errors.is_empty() { 3 } else { 4 };
        if charts != want {
            return Err(format!("producer {}: {charts} charts, not {want}", p.name));
        }
    }
    for g in &r.consumer_groups {
        let at = html
            .find(&format!("id=\"group-{}\"", g.group))
            .ok_or(format!("no section for group {}", g.group))?;
        let section = &html[at..];
        let section = &section[..section.find("<h3").unwrap_or(section.len())];
        if !section.contains("Lag: ") {
            return Err(format!("group {}: no lag chart", g.group));
        }
        if !g.generations.is_empty() && !section.contains("<svg class=\"ownership\"") {
            return Err(format!("group {}: no ownership chart", g.group));
        }
    }
    let bars = html.matches("<svg class=\"logs\"").count();
    let want = (r.pictures.len() + 1) * r.partitions.len();
    if bars != want {
        return Err(format!("{bars} log drawings, not {want}"));
    }
    if html.contains("chart not drawn") {
        return Err("a chart failed to draw".to_string());
    }
    Ok(())
}

/// All three, for a scenario's report.
pub fn check(html: &str, r: &Report) -> Result<(), String> {
    well_formed(html)?;
    self_contained(html)?;
    complete(html, r)
}

fn report() -> Report {
    crate::run(&kafkasim::scenario::load(&crate::root().join("scenarios/consumer-rollback.yaml")).expect("loads"))
}

#[test]
fn a_report_passes_and_each_kind_of_damage_is_caught() {
    let r = report();
    let html = kafkasim::report::html::render(&r);
    check(&html, &r).unwrap_or_else(|e| panic!("{e}"));
    // Each damage, done to the good page, must be caught.
    let damaged = [
        html.replacen("</table>", "", 1),
        html.replacen("<p>", "<p><div>", 1),
        html.replacen("<body>", "<body><img src=\"https://example.com/x.png\">", 1),
        html.replacen("<body>", "<body><a href=\"other.html\">x</a>", 1),
        html.replacen("<body>", "<body><div style=\"background: url(x.png)\"></div>", 1),
        html.replacen("Content-Security-Policy", "X-Nothing", 1),
        html.replacen("<svg class=\"swimlanes\"", "<svg class=\"lanes\"", 1),
        html.replacen("Lag: ", "Lag ", 1),
    ];
    for (i, page) in damaged.iter().enumerate() {
        assert!(check(page, &r).is_err(), "damage {i} went unnoticed");
    }
}

#[test]
fn names_are_escaped() {
    let yaml = "name: esc\nduration: 2s\ncluster: { brokers: 1 }\ntopics: [{ name: t, partitions: 1 }]\n\
                producers: [{ name: p, topic: t, rate: 10/s }]\n\
                description: \"<script>alert(1)</script> & <b>bold</b>\"\n";
    let r = crate::run_yaml(yaml);
    let html = kafkasim::report::html::render(&r);
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"));
    check(&html, &r).unwrap_or_else(|e| panic!("{e}"));
}

/// The production-like load's page stays small: its series has a fixed number of points.
#[test]
fn the_page_does_not_grow_with_batches() {
    let short = crate::run_yaml(
        "name: s\nduration: 5s\ncluster: { brokers: 3 }\ntopics: [{ name: t, partitions: 6, replication.factor: 3 }]\n\
         producers: [{ name: p, topic: t, rate: 2000/s }]\n\
         consumers: [{ group: g, topics: [t], members: 2 }]\n",
    );
    let long = crate::run_yaml(
        "name: s\nduration: 20s\ncluster: { brokers: 3 }\ntopics: [{ name: t, partitions: 6, replication.factor: 3 }]\n\
         producers: [{ name: p, topic: t, rate: 8000/s }]\n\
         consumers: [{ group: g, topics: [t], members: 2 }]\n",
    );
    let (a, b) = (
        kafkasim::report::html::render(&short).len(),
        kafkasim::report::html::render(&long).len(),
    );
    assert!(
        long.producers[0].batches > 4 * short.producers[0].batches,
        "the long run has many more batches"
    );
    // The numbers get longer (offsets of five digits, not four), nothing more.
    assert!(b < a * 13 / 10, "{a} bytes for the short run, {b} for the long one");
}
