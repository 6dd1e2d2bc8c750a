#!/usr/bin/env python3
"""Regenerate the binary documents in ../docs from the JSON sources in this folder.

    python3 -m venv /tmp/evalvenv-b
    /tmp/evalvenv-b/bin/pip install python-docx fpdf2
    /tmp/evalvenv-b/bin/python generate.py
"""
import json
from pathlib import Path

from docx import Document
from docx.shared import Pt
from fpdf import FPDF

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"


def build_docx():
    src = json.loads((HERE / "extended-warranty.json").read_text())
    doc = Document()
    doc.core_properties.title = src["title"]
    doc.add_heading(src["title"], level=0)
    doc.add_paragraph(src["subtitle"]).runs[0].italic = True
    for para in src["intro"]:
        doc.add_paragraph(para)
    doc.add_heading(src["table_heading"], level=1)
    doc.add_paragraph(src["table_lead"])
    table = doc.add_table(rows=1, cols=len(src["table_header"]))
    table.style = "Light Grid Accent 1"
    for cell, text in zip(table.rows[0].cells, src["table_header"]):
        cell.text = text
        cell.paragraphs[0].runs[0].bold = True
    for row in src["table_rows"]:
        cells = table.add_row().cells
        for cell, text in zip(cells, row):
            cell.text = text
    for heading, paras in src["sections"]:
        doc.add_heading(heading, level=1)
        for para in paras:
            doc.add_paragraph(para)
    foot = doc.add_paragraph(src["footnote"])
    foot.runs[0].font.size = Pt(8)
    doc.save(DOCS / "extended-warranty.docx")


def build_pdf():
    src = json.loads((HERE / "contacts-and-hours.json").read_text())
    pdf = FPDF(format="Letter")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_title(src["title"])
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(0, 8, src["title"], new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", "", 10)
    for line in src["address_lines"]:
        pdf.cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.multi_cell(0, 5, src["address_note"], new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    def heading(text):
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)

    def text_table(header, widths, rows):
        pdf.set_font("Helvetica", "B", 9)
        for w, h in zip(widths, header):
            pdf.cell(w, 6, h)
        pdf.ln(6)
        pdf.set_font("Helvetica", "", 9)
        for row in rows:
            for w, t in zip(widths, row):
                pdf.cell(w, 5.5, t)
            pdf.ln(5.5)
        pdf.set_font("Helvetica", "", 10)
        pdf.ln(3)

    heading("Department Hours and Direct Lines")
    pdf.multi_cell(0, 5, src["hours_lead"], new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    text_table(src["hours_header"], src["hours_widths"], src["hours_rows"])

    heading("Staff Directory")
    pdf.multi_cell(0, 5, src["staff_lead"], new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    text_table(src["staff_header"], src["staff_widths"], src["staff_rows"])

    heading("Holiday Closures")
    pdf.multi_cell(0, 5, src["holiday_lead"], new_x="LMARGIN", new_y="NEXT")
    for h in src["holidays"]:
        pdf.cell(0, 5, "    - " + h, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.multi_cell(0, 5, src["holiday_note"], new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "I", 8)
    pdf.multi_cell(0, 4, src["footer"], new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(DOCS / "contacts-and-hours.pdf"))


if __name__ == "__main__":
    build_docx()
    build_pdf()
    print("wrote", DOCS / "extended-warranty.docx", "and", DOCS / "contacts-and-hours.pdf")
