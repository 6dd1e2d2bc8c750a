//! Word timings → visemes for the built-in avatar (a small grapheme-based mapping; a
//! phoneme-level TTS can feed exact timings through the same path).

/// One mouth shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viseme {
    /// Name (Oculus-style set).
    pub name: &'static str,
    /// Offset from the start of the response's audio, ms.
    pub offset_ms: u32,
    /// Duration, ms.
    pub duration_ms: u32,
}

fn viseme_for(c: char) -> Option<&'static str> {
    Some(match c.to_ascii_lowercase() {
        'p' | 'b' | 'm' => "PP",
        'f' | 'v' => "FF",
        't' | 'd' => "DD",
        'k' | 'g' | 'q' | 'c' | 'x' => "kk",
        'j' => "CH",
        's' | 'z' => "SS",
        'n' | 'l' => "nn",
        'r' => "RR",
        'a' => "aa",
        'e' => "E",
        'i' | 'y' => "ih",
        'o' => "oh",
        'u' | 'w' => "ou",
        'h' => "TH",
        _ => return None,
    })
}

/// Visemes for a word spoken from `start_ms` to `end_ms` (response audio time), with
/// consecutive duplicates merged and a closing `sil`.
pub fn for_word(word: &str, start_ms: u32, end_ms: u32) -> Vec<Viseme> {
    let shapes: Vec<&'static str> = word.chars().filter_map(viseme_for).collect();
    let mut out: Vec<Viseme> = Vec::new();
    if shapes.is_empty() || end_ms <= start_ms {
        return out;
    }
    let span = end_ms - start_ms;
    let n = shapes.len() as u32;
    for (i, name) in shapes.into_iter().enumerate() {
        let offset = start_ms + span * i as u32 / n;
        let next = start_ms + span * (i as u32 + 1) / n;
        match out.last_mut() {
            Some(last) if last.name == name => last.duration_ms = next - last.offset_ms,
            _ => out.push(Viseme {
                name,
                offset_ms: offset,
                duration_ms: next - offset,
            }),
        }
    }
    out.push(Viseme {
        name: "sil",
        offset_ms: end_ms,
        duration_ms: 0,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_and_merges() {
        let v = for_word("Moon", 100, 500);
        let names: Vec<&str> = v.iter().map(|v| v.name).collect();
        assert_eq!(names, ["PP", "oh", "nn", "sil"]);
        assert_eq!(v[0].offset_ms, 100);
        assert_eq!(v[1].duration_ms, 200, "oo merged");
        assert!(for_word("123", 0, 100).is_empty());
    }
}
