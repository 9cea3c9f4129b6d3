//! The report's attack view, rendered from a hand-built run of adaptive attacks
//! (fixtures::attack_run): insta snapshots of the attack section of report.html and of
//! summary.md's attack lines; hostile turns are escaped text, never markup or templates.

use reports::RunFiles;

fn files() -> RunFiles {
    let run = fixtures::attack_run::build();
    RunFiles {
        manifest: run.manifest,
        summary: run.summary,
        attempts: run.attempts,
    }
}

/// The page from the attack section's heading to the attempts section's.
fn attack_section(html: &str) -> &str {
    let start = html.find("<h2 id=\"attacks\">").unwrap();
    let end = html.find("<h2 id=\"attempts\">").unwrap();
    &html[start..end]
}

#[test]
fn attacks_are_collapsed_conversations_with_their_counts() {
    let html = reports::render_html(&files()).unwrap();
    let section = attack_section(&html);
    insta::assert_snapshot!("attack_section_html", section);

    // Collapsed by default: no details element is open.
    assert_eq!(section.matches("<details class=\"attack\">").count(), 5);
    assert!(!section.contains("<details open"));
    assert!(html.contains("<a href=\"#attacks\">Attacks</a>"));
    // Counts: three successes of four, needing 2, 3 and 10 target queries.
    assert!(section.contains("4 behaviors attacked, 3 successes (by the attack&#x27;s own judge); target queries per success: mean 5.0, median 3.0; queries: attacker 42, target 40, judge 40."), "{section}");
    assert!(
        section.contains("1 behavior attacked, 0 successes"),
        "{section}"
    );
    // Caps: b4 has 76 turns, of which 60 are shown, and a text over the cap.
    assert!(section.contains("16 of the 76 turns are not shown"));
    assert!(section.contains("more characters: the full text is in attempts.jsonl."));

    // Hostile text is escaped, in turns, notes and goals; templates are not evaluated.
    for raw in [
        "<script>",
        "<img",
        "</details></summary>",
        "<b>now</b>",
        "49",
    ] {
        assert!(!section.contains(raw), "{raw} in the page");
    }
    assert!(section.contains("&lt;script&gt;window.pwned = 1&lt;&#x2f;script&gt;"));
    assert!(section.contains("{{ 7*7 }} {% raw %}"));
    assert!(section.contains("Explain a synthesis {{ goal }}"));
    assert!(section.contains("note: &lt;script&gt;"));
    // The page's policy is unchanged: no handler attribute, no new script.
    assert!(!section.contains(" onerror=\""));
    assert_eq!(html.matches("<script>").count(), 1);
    assert!(html.contains("content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\""));
}

#[test]
fn summary_md_counts_each_attack_probe() {
    let markdown = reports::render_markdown(&files());
    let start = markdown.find("## Attacks").unwrap();
    let end = start
        + markdown[start..]
            .find("\n## ")
            .unwrap_or(markdown.len() - start);
    insta::assert_snapshot!("attack_summary_md", &markdown[start..end]);
    assert!(!markdown.contains("<script>"));
}

#[test]
fn a_run_without_attacks_has_no_attack_section() {
    let mut files = files();
    files.attempts.clear();
    let html = reports::render_html(&files).unwrap();
    assert!(!html.contains("id=\"attacks\""));
    assert!(!reports::render_markdown(&files).contains("## Attacks"));
}
