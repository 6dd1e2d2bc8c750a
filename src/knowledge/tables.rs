//! Tables become records, and lines under a label carry it. Tables: one line per row, each cell named by its column ("Oil change —
//! Price: $49.95; Time: 30 minutes."), so a row can be retrieved, matched and spoken on its
//! own, never as raw `|` cells. Used for every document kind (Markdown and Word tables
//! arrive as ` | `-joined rows, plain-text pipe tables as written, CSV files through the
//! csv crate).

/// The text with every run of table rows (two or more lines of ` | `-separated cells, the
/// first being the header) rewritten as records; other lines are left as they are.
pub fn records(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let run = lines[i..]
            .iter()
            .take_while(|l| cells(l).is_some_and(|c| c.len() >= 2) || is_rule(l))
            .count();
        let rows: Vec<Vec<String>> = lines[i..i + run]
            .iter()
            .filter(|l| !is_rule(l))
            .filter_map(|l| cells(l))
            .collect();
        if rows.len() >= 2 {
            out.extend(rows_to_records(&rows[0], &rows[1..]));
            i += run;
        } else {
            out.push(lines[i].to_owned());
            i += 1;
        }
    }
    out.join("\n")
}

/// A block of short lines under a label line ("Service department" / "Monday - Friday
/// 7 am - 6 pm" / "Sunday closed") becomes one line per fact that carries its label
/// ("Service department: Sunday closed"), so a chunk cut inside the block, and a line
/// spoken alone, still say what they are about. Other paragraphs are left as they are.
pub fn labelled_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            let lines: Vec<&str> = paragraph.lines().map(str::trim).collect();
            let Some((label, facts)) = lines.split_first() else {
                return paragraph.to_owned();
            };
            let words = label.split_whitespace().count();
            let is_label = (1..=6).contains(&words)
                && !label.ends_with(['.', '!', '?', ';', ','])
                && !label.contains(" — ")
                && !label.contains('|')
                && !label.chars().any(|c| c.is_ascii_digit())
                && !label.starts_with(['-', '•', '*']);
            // Facts start like an item ("Monday - Friday …", "8 am …", "- …"); a line
            // starting in lower case continues the one before instead.
            let short = !facts.is_empty()
                && facts.iter().all(|l| {
                    l.split_whitespace().count() <= 14
                        && !l.ends_with(':')
                        && l.starts_with(|c: char| {
                            c.is_uppercase()
                                || c.is_ascii_digit()
                                || matches!(c, '-' | '•' | '*' | '$')
                        })
                });
            if !(is_label && short) {
                return paragraph.to_owned();
            }
            let label = label.trim_end_matches(':').trim();
            facts
                .iter()
                .map(|l| format!("{label}: {}", l.trim_start_matches(['-', '•', '*']).trim()))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A CSV document as records (first row the header); `None` if it is not CSV.
pub fn csv_records(text: &str) -> Option<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let rows: Vec<Vec<String>> = reader
        .records()
        .filter_map(Result::ok)
        .map(|r| r.iter().map(str::to_owned).collect::<Vec<_>>())
        .filter(|r: &Vec<String>| r.iter().any(|c| !c.is_empty()))
        .collect();
    let (header, rows) = rows.split_first()?;
    (header.len() >= 2 && !rows.is_empty()).then(|| rows_to_records(header, rows).join("\n"))
}

/// The cells of a ` | `-separated row (outer pipes allowed), if the line is one.
fn cells(line: &str) -> Option<Vec<String>> {
    let line = line.trim();
    if !line.contains('|') {
        return None;
    }
    let inner = line.strip_prefix('|').unwrap_or(line);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    Some(inner.split('|').map(|c| c.trim().to_owned()).collect())
}

/// A Markdown separator row (`|---|:--:|`).
fn is_rule(line: &str) -> bool {
    let line = line.trim();
    line.contains('-') && line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// Each row as "First cell — Column: value; Column: value." (empty cells left out).
fn rows_to_records(header: &[String], rows: &[Vec<String>]) -> Vec<String> {
    rows.iter()
        .filter(|row| row.iter().any(|c| !c.is_empty()))
        .map(|row| {
            let label = row.first().map(String::as_str).unwrap_or_default();
            let named: Vec<String> = row
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, cell)| !cell.is_empty())
                .map(|(i, cell)| match header.get(i).map(|h| h.trim()) {
                    Some(h) if !h.is_empty() => format!("{h}: {cell}"),
                    _ => cell.clone(),
                })
                .collect();
            let mut record = if label.is_empty() {
                named.join("; ")
            } else if named.is_empty() {
                label.to_owned()
            } else {
                format!("{label} — {}", named.join("; "))
            };
            if !record.ends_with(['.', '!', '?']) {
                record.push('.');
            }
            record
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_rows_become_named_records_and_prose_stays() {
        let text = "Our prices:\n\
                    | Service | Price | Time |\n\
                    |---|---:|---|\n\
                    | Wheel balance | $35 | 20 min |\n\
                    | Cabin filter | $42.50 | |\n\
                    Prices include tax.";
        assert_eq!(
            records(text),
            "Our prices:\n\
             Wheel balance — Price: $35; Time: 20 min.\n\
             Cabin filter — Price: $42.50.\n\
             Prices include tax."
        );
    }

    #[test]
    fn a_lone_line_with_a_pipe_is_not_a_table() {
        let text = "Call us | we answer 24/7.\nThanks.";
        assert_eq!(records(text), text);
    }

    #[test]
    fn lines_under_a_label_carry_it() {
        let text = "Body shop\nMonday - Friday 8:00 am - 5:00 pm\nSaturday closed\n\nWe fix dents.\nAnd scratches.";
        assert_eq!(
            labelled_lines(text),
            "Body shop: Monday - Friday 8:00 am - 5:00 pm\nBody shop: Saturday closed\n\nWe fix dents.\nAnd scratches."
        );
        // A record or a sentence is no label.
        let text = "Oil change — Price: $49.\nTire rotation — Price: $25.";
        assert_eq!(labelled_lines(text), text);
    }

    #[test]
    fn csv_rows_are_records_with_quoted_commas_kept() {
        let csv = "Stock,Year,Model,Price\nK-17,2022,Corvo LX,\"$18,400\"\nK-22,2025,Corvo EX,\"$31,250\"\n";
        assert_eq!(
            csv_records(csv).as_deref(),
            Some(
                "K-17 — Year: 2022; Model: Corvo LX; Price: $18,400.\n\
                 K-22 — Year: 2025; Model: Corvo EX; Price: $31,250."
            )
        );
        assert_eq!(csv_records("just one line"), None);
    }
}
