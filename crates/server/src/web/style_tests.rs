//! The stylesheet's promises, checked: the focus ring stands out (WCAG 2.2 non-text contrast, 3:1) on every
//! background it is drawn on, in light and dark mode, and a focused element is never hidden under the
//! sticky save bar.

const STYLE: &str = consentry_service::preferences::STYLESHEET;

/// The value of custom property `name` in the first block of `css` that defines it.
fn var<'a>(css: &'a str, name: &str) -> &'a str {
    let at = css.find(&format!("{name}:")).unwrap_or_else(|| panic!("{name} is defined"));
    css[at + name.len() + 1..].split(';').next().unwrap_or("").trim()
}

/// The relative luminance of a `#rrggbb` colour (WCAG 2).
fn luminance(hex: &str) -> f64 {
    let hex = hex.trim_start_matches('#');
    assert_eq!(hex.len(), 6, "#rrggbb: {hex}");
    let channel = |i: usize| {
        let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")) / 255.0;
        if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
    };
    0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
}

fn contrast(a: &str, b: &str) -> f64 {
    let (a, b) = (luminance(a), luminance(b));
    (a.max(b) + 0.05) / (a.min(b) + 0.05)
}

#[test]
fn the_focus_ring_has_3_to_1_against_its_backgrounds() {
    let dark_at = STYLE.find("prefers-color-scheme: dark").expect("a dark mode");
    let (light, dark) = (&STYLE[..dark_at], &STYLE[dark_at..]);
    for (mode, css) in [("light", light), ("dark", dark)] {
        let focus = var(css, "--focus");
        for background in ["--bg", "--card", "--info-bg", "--ok-bg"] {
            let ratio = contrast(focus, var(css, background));
            assert!(ratio >= 3.0, "{mode}: focus {focus} on {background}: {ratio:.2}:1");
        }
    }
    // The header is dark in both modes: its own ring colour.
    let on_dark = var(light, "--focus-on-dark");
    for header in ["#1d2430", "#0d1117"] {
        let ratio = contrast(on_dark, header);
        assert!(ratio >= 3.0, "focus {on_dark} on the header {header}: {ratio:.2}:1");
    }
    assert!(STYLE.contains("header.top :focus-visible { outline-color: var(--focus-on-dark); }"));
}

#[test]
fn a_focused_element_clears_the_sticky_save_bar() {
    assert!(STYLE.contains(".actions { position: sticky; bottom: 0;"), "the save bar is sticky");
    assert!(STYLE.contains("scroll-padding-bottom: 7rem"), "scrolling keeps room for it");
    assert!(STYLE.contains("scroll-margin-bottom: 7rem"), "and so does focusing");
}
