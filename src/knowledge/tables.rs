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

/// Tables printed as text (a PDF's table, where only spaces ever separated the cells)
/// rewritten as ` | `-separated rows for [`records`]: a header line of column names, then
/// two or more rows that are a label followed by the same number of values a reader can
/// tell apart — phone numbers, times and time ranges, "Closed", prices, numbers:
/// `Service (541) 555-0152 7:00 am - 6:00 pm Closed` under `Department Direct line Sunday`
/// becomes `Service | (541) 555-0152 | 7:00 am - 6:00 pm | Closed`. The header's words are
/// grouped into as many names as the rows have cells ("Direct line", "Mon - Fri"); when
/// they cannot be, the lines are left as they are.
pub fn text_tables(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        if let Some((table, next)) = text_table_at(&lines, i) {
            out.extend(table);
            i = next;
        } else {
            out.push(lines[i].to_owned());
            i += 1;
        }
    }
    out.join("\n")
}

/// The table whose header is line `at`, as pipe rows, and the index after its last row.
fn text_table_at(lines: &[&str], at: usize) -> Option<(Vec<String>, usize)> {
    let header = lines[at].trim();
    let header_words = header.split_whitespace().count();
    if header.is_empty()
        || header.contains('|')
        || !(2..=12).contains(&header_words)
        || header.ends_with(['.', '!', '?', ':', ';', ','])
        || value_cells(header).is_some_and(|(_, v)| !v.is_empty())
    {
        return None;
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut width = 0;
    let mut end = at + 1;
    let mut i = at + 1;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.is_empty() {
            i += 1;
            continue;
        }
        match value_cells(line) {
            Some((label, values))
                if values.len() >= 2 && (rows.is_empty() || values.len() == width) =>
            {
                width = values.len();
                let mut row = vec![label];
                row.extend(values);
                rows.push(row);
                i += 1;
                end = i;
            }
            _ => break,
        }
    }
    if rows.len() < 2 {
        return None;
    }
    let names = column_names(header, width + 1)?;
    let mut table = vec![names.join(" | ")];
    table.extend(rows.iter().map(|r| r.join(" | ")));
    Some((table, end))
}

/// A row's label (the words before its first value) and its values, if every word after
/// the label belongs to a value.
fn value_cells(line: &str) -> Option<(String, Vec<String>)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut label: Vec<&str> = Vec::new();
    let mut values: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        match value_at(&words, i) {
            Some(n) => {
                values.push(words[i..i + n].join(" "));
                i += n;
            }
            None if values.is_empty() => {
                label.push(words[i]);
                i += 1;
            }
            None => return None,
        }
    }
    if label.is_empty() {
        return None;
    }
    Some((label.join(" "), values))
}

/// The number of words of the value starting at `words[i]`, if one does.
fn value_at(words: &[&str], i: usize) -> Option<usize> {
    let w = words[i];
    let lower = w.to_lowercase();
    // A time range: "9:00 am - 8:00 pm", "9am-5pm", "7:30 - 4:30".
    if let Some(n) = time_at(words, i) {
        if let Some(dash) = words.get(i + n)
            && matches!(*dash, "-" | "–" | "to")
            && let Some(m) = time_at(words, i + n + 1)
        {
            return Some(n + 1 + m);
        }
        return Some(n);
    }
    // A phone number: "(541) 555-0140", "541-555-0140", "555-0140".
    let digits_dash = |s: &str| {
        s.split('-').count() >= 2
            && s.split('-')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    };
    if w.len() == 5
        && w.starts_with('(')
        && w.ends_with(')')
        && w[1..4].chars().all(|c| c.is_ascii_digit())
        && words.get(i + 1).is_some_and(|n| digits_dash(n))
    {
        return Some(2);
    }
    if digits_dash(w) && w.len() >= 8 {
        return Some(1);
    }
    if matches!(
        lower.as_str(),
        "closed" | "open" | "n/a" | "-" | "—" | "yes" | "no" | "free" | "included"
    ) {
        return Some(1);
    }
    // A price or a number: "$39,990", "14", "3.5%".
    let number = lower.trim_start_matches('$').trim_end_matches('%');
    if !number.is_empty()
        && number.chars().any(|c| c.is_ascii_digit())
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ',' | '.'))
    {
        return Some(1);
    }
    None
}

/// The number of words of a time of day at `words[i]`: "9:00 am", "9am", "noon", "7:30".
fn time_at(words: &[&str], i: usize) -> Option<usize> {
    let lower = words[i].to_lowercase();
    if matches!(lower.as_str(), "noon" | "midnight") {
        return Some(1);
    }
    let meridiem = |s: &str| matches!(s, "am" | "pm" | "a.m." | "p.m." | "a.m" | "p.m");
    let clock = |s: &str| {
        let (h, m) = s.split_once(':').unwrap_or((s, "00"));
        !h.is_empty()
            && h.len() <= 2
            && h.chars().all(|c| c.is_ascii_digit())
            && m.len() == 2
            && m.chars().all(|c| c.is_ascii_digit())
    };
    if let Some(base) = lower
        .strip_suffix("am")
        .or_else(|| lower.strip_suffix("pm"))
        .filter(|b| !b.is_empty())
    {
        return clock(base).then_some(1);
    }
    if !clock(&lower) {
        return None;
    }
    if words
        .get(i + 1)
        .is_some_and(|n| meridiem(&n.to_lowercase()))
    {
        return Some(2);
    }
    // "7:30" alone is a time; "14" alone is a number.
    lower.contains(':').then_some(1)
}

/// A header line's words grouped into `n` column names: a word in lower case belongs to
/// the one before ("Direct line"), "Mon - Fri" and "New & Used" are one name.
fn column_names(header: &str, n: usize) -> Option<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    let mut joining = false;
    for w in header.split_whitespace() {
        let joins = matches!(
            w,
            "-" | "–" | "&" | "/" | "to" | "and" | "or" | "of" | "per"
        );
        let lower_start = w.chars().next().is_some_and(char::is_lowercase);
        match names.last_mut() {
            Some(last) if joining || joins || lower_start => {
                last.push(' ');
                last.push_str(w);
            }
            _ => names.push(w.to_owned()),
        }
        joining = joins;
    }
    (names.len() == n).then_some(names)
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
    fn a_table_printed_as_text_becomes_records() {
        let page = "Opening hours by desk\n\
                    Desk Phone line Mon - Fri Sunday\n\
                    \n\
                    Tyre Centre (208) 555-0199 8am - 5pm Closed\n\
                    \n\
                    Spare Parts 3555-0142 7:30 am - 5:00 pm 9:00 am - noon\n\
                    We answer every call.";
        assert_eq!(
            records(&text_tables(page)),
            "Opening hours by desk\n\
             Tyre Centre — Phone line: (208) 555-0199; Mon - Fri: 8am - 5pm; Sunday: Closed.\n\
             Spare Parts — Phone line: 3555-0142; Mon - Fri: 7:30 am - 5:00 pm; Sunday: 9:00 am - noon.\n\
             We answer every call."
        );
        // Rows of unlike widths, a sentence, or a header that cannot be grouped into as
        // many names as the rows have cells: left as they are.
        let prose = "Prices\nOil change $49 30 minutes\nWe are open 9 am - 5 pm daily.";
        assert_eq!(text_tables(prose), prose);
        let ungroupable = "Desk Phone Weekdays Weekend Holidays\nParts 555-0142 8am - 5pm Closed\nSales 555-0140 9am - 8pm Closed";
        assert_eq!(text_tables(ungroupable), ungroupable);
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
