//! A linear pre-scan that bounds how deeply a catalogue document nests, before a parser sees it.
//!
//! Why our own: libyaml (under `serde_norway`) rescans its stack of possible keys for every token, so a
//! document nested 100,000 flow levels deep takes it seconds to minutes, and its own recursion limit only
//! applies after the whole document was scanned. No kept crate bounds YAML depth before scanning, so this
//! one pass does, for JSON and YAML alike. It over-counts rather than under-counts: nesting hidden from it
//! (in quotes, comments, block scalars) is text to the parser too. A catalogue nests about four levels.

/// The deepest nesting a catalogue document may have.
pub const MAX_DEPTH: usize = 32;

/// Whether a JSON text nests deeper than `max` arrays and objects.
pub fn json_too_deep(text: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Whether a YAML text nests deeper than `max` collections: block levels (by indentation, plus compact
/// `- - x` entries on one line) and flow levels (`[`, `{`) together.
pub fn yaml_too_deep(text: &str, max: usize) -> bool {
    // Indentations of the block collections that enclose the current line.
    let mut blocks: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    // While inside a block scalar: lines indented deeper than this are its text.
    let mut scalar_owner: Option<usize> = None;
    let mut quote: Option<u8> = None;
    for line in text.lines() {
        let bytes = line.as_bytes();
        let indent = bytes.iter().take_while(|&&b| b == b' ').count();
        let blank = bytes[indent..].iter().all(|b| b.is_ascii_whitespace());
        if let Some(owner) = scalar_owner {
            if blank || indent > owner {
                continue;
            }
            scalar_owner = None;
        }
        if blank && quote.is_none() {
            continue;
        }
        let mut inline = 0usize; // compact block levels opened on this line
        if quote.is_none() && flow == 0 {
            while blocks.last().is_some_and(|&b| b >= indent) {
                blocks.pop();
            }
            blocks.push(indent);
        }
        let mut token_start = true;
        let mut owner_col = indent;
        let mut i = indent;
        let mut plain = false;
        let (mut dashed, mut keyed) = (false, false);
        while i < bytes.len() {
            let b = bytes[i];
            if let Some(q) = quote {
                if b == b'\\' && q == b'"' {
                    i += 2;
                    continue;
                }
                if b == q {
                    if q == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    quote = None;
                }
                i += 1;
                continue;
            }
            let next_blank = bytes.get(i + 1).is_none_or(|c| c.is_ascii_whitespace());
            let prev_blank = i == 0 || bytes[i - 1].is_ascii_whitespace();
            match b {
                b' ' | b'\t' => {}
                b'#' if prev_blank => break,
                b':' if next_blank => {
                    if flow == 0 && dashed && !keyed {
                        // `- key: value` opens a mapping inside the entry.
                        inline += 1;
                        keyed = true;
                    }
                    plain = false;
                    token_start = true;
                }
                _ if plain => {
                    if flow > 0 && matches!(b, b',' | b'[' | b']' | b'{' | b'}') {
                        plain = false;
                        continue;
                    }
                }
                b'-' | b'?' if token_start && next_blank && flow == 0 => {
                    dashed = true;
                    if i > indent {
                        inline += 1;
                    }
                    owner_col = i + 2;
                }
                b'[' | b'{' if token_start || flow > 0 => {
                    flow += 1;
                    token_start = true;
                }
                b']' | b'}' if flow > 0 => {
                    flow -= 1;
                    token_start = false;
                }
                b',' if flow > 0 => token_start = true,
                b'\'' | b'"' if token_start => quote = Some(b),
                b'|' | b'>' if token_start && flow == 0 => {
                    scalar_owner = Some(if i > indent { owner_col.min(i) } else { indent });
                    break;
                }
                _ => {
                    if token_start && flow == 0 {
                        owner_col = owner_col.max(i);
                    }
                    plain = true;
                    token_start = false;
                }
            }
            if blocks.len() + inline + flow > max {
                return true;
            }
            i += 1;
        }
        if blocks.len() + inline + flow > max {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_yaml(text: &str, deep: bool) {
        assert_eq!(yaml_too_deep(text, 4), deep, "{text:?}");
    }

    #[test]
    fn yaml_depth() {
        check_yaml("a: 1\nb: [1, 2]\n", false);
        check_yaml("a:\n  b:\n    c:\n      d: 1\n", false);
        check_yaml("a:\n  b:\n    c:\n      d:\n        e: 1\n", true);
        check_yaml("a: [[[[1]]]]\n", true);
        check_yaml("a: [[[1]]]\n", false);
        check_yaml("- - - - - x\n", true);
        check_yaml("- - - x\n", false);
        check_yaml("a: '[[[[[['\nb: \"{{{{{{\\\"[[[[\"\n", false);
        check_yaml("a: see [[[[[ this\n", false);
        check_yaml("a: x # [[[[[[\n", false);
        check_yaml("a: |\n  [[[[[[\n  {{{{{\nb: 1\n", false);
        check_yaml("a: |\n  text\nb: [[[[[1]]]]]\n", true);
        check_yaml("a: {b: {c: {d: {e: 1}}}}\n", true);
        check_yaml("a: [\n  [\n    [\n      [\n        [1]]]]]\n", true);
        assert!(yaml_too_deep(&format!("a: {}", "[".repeat(100_000)), MAX_DEPTH));
        assert!(yaml_too_deep(&"- ".repeat(100_000), MAX_DEPTH));
        assert!(!yaml_too_deep(consentry_core::catalog::DEFAULT_CATALOG_YAML, 6));
    }

    #[test]
    fn json_depth() {
        assert!(!json_too_deep(br#"{"a": [[[1]]]}"#, 4));
        assert!(json_too_deep(br#"{"a": [[[[1]]]]}"#, 4));
        assert!(!json_too_deep(br#"{"a": "[[[[[[\"[[[[["}"#, 4));
        assert!(json_too_deep("[".repeat(100_000).as_bytes(), MAX_DEPTH));
    }
}
