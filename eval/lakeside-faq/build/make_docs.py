#!/usr/bin/env python3
"""Regenerate the binary documents in ../docs from the plain-text sources here.

    python3 -m venv /tmp/evalvenv && /tmp/evalvenv/bin/pip install python-docx fpdf2
    /tmp/evalvenv/bin/python make_docs.py

Source markup (one item per line):
  "# Title"        document title
  "## Heading"     section heading
  "| a | b | c"    table row (first row of a block is the header)
  "Q: ..." / "A: ..."  question / answer paragraphs
  anything else    a normal paragraph
"""
from pathlib import Path

from docx import Document
from docx.shared import Pt
from fpdf import FPDF

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"


def blocks(path):
    """Yield (kind, payload) items; consecutive table rows are grouped."""
    table = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip("|").split("|")])
            continue
        if table:
            yield "table", table
            table = []
        if not line:
            continue
        if line.startswith("## "):
            yield "h2", line[3:]
        elif line.startswith("# "):
            yield "h1", line[2:]
        elif line.startswith("Q: "):
            yield "q", line
        elif line.startswith("A: "):
            yield "a", line
        else:
            yield "p", line
    if table:
        yield "table", table


def make_docx(src, dst):
    doc = Document()
    doc.styles["Normal"].font.size = Pt(11)
    for kind, payload in blocks(src):
        if kind == "h1":
            doc.add_heading(payload, level=1)
        elif kind == "h2":
            doc.add_heading(payload, level=2)
        elif kind == "q":
            para = doc.add_paragraph()
            para.add_run(payload).bold = True
        elif kind in ("a", "p"):
            doc.add_paragraph(payload)
        elif kind == "table":
            table = doc.add_table(rows=len(payload), cols=len(payload[0]))
            table.style = "Table Grid"
            for r, row in enumerate(payload):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = cell
                    if r == 0:
                        table.cell(r, c).paragraphs[0].runs[0].bold = True
            doc.add_paragraph()
    doc.save(dst)


def make_pdf(src, dst):
    text = src.read_text(encoding="utf-8")
    text.encode("latin-1")  # core fonts are Latin-1 only; fail loudly otherwise
    pdf = FPDF(format="Letter")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(20, 18, 20)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    for kind, payload in blocks(src):
        if kind == "h1":
            pdf.set_font("Helvetica", "B", 18)
            pdf.multi_cell(width, 9, payload)
            pdf.ln(2)
        elif kind == "h2":
            pdf.ln(3)
            pdf.set_font("Helvetica", "B", 14)
            pdf.multi_cell(width, 8, payload)
            pdf.ln(1)
        elif kind == "q":
            pdf.set_font("Helvetica", "B", 11)
            pdf.multi_cell(width, 6, payload)
        elif kind in ("a", "p"):
            pdf.set_font("Helvetica", "", 11)
            pdf.multi_cell(width, 6, payload)
            pdf.ln(2)
        elif kind == "table":
            raise SystemExit("tables are only supported in the docx source")
    pdf.output(str(dst))


if __name__ == "__main__":
    make_docx(HERE / "service-warranty-faq.txt", DOCS / "service-warranty-faq.docx")
    make_pdf(HERE / "financing-trade-in-faq.txt", DOCS / "financing-trade-in-faq.pdf")
    print("wrote", DOCS / "service-warranty-faq.docx", DOCS / "financing-trade-in-faq.pdf")
