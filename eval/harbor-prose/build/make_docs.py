#!/usr/bin/env python3
"""Regenerate the binary documents of the harbor-prose eval set.

    python3 -m venv /tmp/evalvenv-c && /tmp/evalvenv-c/bin/pip install python-docx fpdf2
    /tmp/evalvenv-c/bin/python eval/harbor-prose/build/make_docs.py

Sources (in this folder): brochure.txt -> ../docs/seabright-brochure.pdf,
visiting-us.txt -> ../docs/visiting-us.docx. In the sources a line starting
with "# " is a heading, "## " a sub-heading; paragraphs are separated by a
blank line. The PDF uses a core font, so the sources must be Latin-1.
"""
import datetime
import pathlib

import docx
from fpdf import FPDF

HERE = pathlib.Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"
FIXED = datetime.datetime(2025, 1, 15, 9, 0, 0, tzinfo=datetime.timezone.utc)


def blocks(path):
    """Yield (kind, text) with kind in {"h1", "h2", "p"}."""
    text = path.read_text(encoding="utf-8")
    text.encode("latin-1")  # fail early on characters the core font lacks
    for block in text.split("\n\n"):
        block = block.strip()
        if not block:
            continue
        if block.startswith("## "):
            yield "h2", block[3:].strip()
        elif block.startswith("# "):
            yield "h1", block[2:].strip()
        else:
            yield "p", " ".join(block.split())


class Brochure(FPDF):
    def footer(self):
        self.set_y(-15)
        self.set_font("Helvetica", "I", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 10, f"Seabright Harbor Automotive - page {self.page_no()}", align="C")


def make_pdf():
    pdf = Brochure(format="Letter")
    pdf.set_creation_date(FIXED)
    pdf.set_title("Seabright Harbor Automotive - Brochure")
    pdf.set_author("Seabright Harbor Automotive")
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_margins(22, 22, 22)
    for kind, text in blocks(HERE / "brochure.txt"):
        if kind == "h1":
            pdf.add_page()
            pdf.set_font("Helvetica", "B", 22)
            pdf.set_text_color(20, 60, 100)
            pdf.multi_cell(0, 11, text)
            pdf.ln(4)
        elif kind == "h2":
            pdf.ln(2)
            pdf.set_font("Helvetica", "B", 14)
            pdf.set_text_color(40, 90, 130)
            pdf.multi_cell(0, 8, text)
            pdf.ln(1)
        else:
            pdf.set_font("Helvetica", "", 11)
            pdf.set_text_color(30, 30, 30)
            pdf.multi_cell(0, 6, text)
            pdf.ln(3)
    pdf.output(str(DOCS / "seabright-brochure.pdf"))


def make_docx():
    d = docx.Document()
    props = d.core_properties
    props.title = "Visiting Seabright Harbor Automotive"
    props.author = "Seabright Harbor Automotive"
    props.created = FIXED.replace(tzinfo=None)
    props.modified = FIXED.replace(tzinfo=None)
    props.last_modified_by = "Seabright Harbor Automotive"
    props.revision = 1
    for kind, text in blocks(HERE / "visiting-us.txt"):
        if kind == "h1":
            d.add_heading(text, level=0)
        elif kind == "h2":
            d.add_heading(text, level=1)
        else:
            d.add_paragraph(text)
    d.save(str(DOCS / "visiting-us.docx"))


if __name__ == "__main__":
    DOCS.mkdir(exist_ok=True)
    make_pdf()
    make_docx()
    print("wrote", DOCS / "seabright-brochure.pdf", "and", DOCS / "visiting-us.docx")
