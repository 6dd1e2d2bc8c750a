#!/usr/bin/env python3
"""Generate the Demo Motors demo knowledge base and its development question set.

What it writes (all committed to the repository):

    examples/demo-kb/about-and-hours.md           Markdown: about, hours per department,
                                                  holidays, directions, contact
    examples/demo-kb/service-menu.pdf             PDF 1.4, 3 letter pages, Helvetica:
                                                  priced service menu, specials, booking
    examples/demo-kb/financing-and-warranty.docx  DOCX: financing and warranty FAQ with
                                                  Title/Heading1/Heading2 styles and a table
    examples/demo-kb/inventory.md                 Markdown: vehicles in stock (a table and
                                                  one sentence per vehicle)
    examples/demo-kb/buying-policies.txt          plain text: deposits, returns, fees,
                                                  payment, delivery
    examples/demo-kb-questions.jsonl              development questions (outside the
                                                  demo-kb folder so they are not ingested)

Every folder under examples/demo-kb/ is meant to be ingested as-is, so nothing else (no
README) lives there. The facts extend the first demo knowledge file (demo-motors.md, now
retired), whose sentences are all kept word for word. Each fact is written once, as a full sentence that names its subject,
because Adam's grounded answer engine speaks the best source sentence as written.

Regenerate (Python 3.11+, standard library only, no network):

    python3 scripts/demo/make_demo_kb.py

The output is deterministic: a second run reproduces every file byte for byte (fixed zip
entry dates and attributes, stored zip entries so the bytes do not depend on the zlib
build, no timestamps in the PDF, fixed object order).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "examples" / "demo-kb"
QUESTIONS = ROOT / "examples" / "demo-kb-questions.jsonl"

# ---------------------------------------------------------------------------------------
# Content. A document is a list of blocks: ("title", text), ("h1", text), ("h2", text),
# ("p", text), ("table", [header_row, row, ...]) and, for the PDF only, ("page",).
# Paragraph text is never hard-wrapped: the answer engine splits sentences at line breaks.
# ---------------------------------------------------------------------------------------

ABOUT = [
    ("title", "Demo Motors: about us, opening hours and directions"),
    ("h1", "About Demo Motors"),
    (
        "p",
        "Demo Motors is a family-owned car dealership at 1200 Harbor Road, Springfield. "
        "We sell new Honda and Toyota vehicles and certified pre-owned cars of every make.",
    ),
    (
        "p",
        "Demo Motors was founded in 1987 by Walter and June Harper, and their children run "
        "the dealership today. "
        "Our sales and service staff speak English and Spanish.",
    ),
    ("h1", "Departments and opening hours"),
    (
        "p",
        "The showroom is open Monday to Friday from 9 am to 7 pm and on Saturday from 9 am "
        "to 5 pm. The showroom is closed on Sunday.",
    ),
    (
        "p",
        "The service department is open Monday to Friday from 7 am to 6 pm and on Saturday "
        "from 8 am to 2 pm.",
    ),
    (
        "p",
        "The parts counter is open Monday to Friday from 8 am to 6 pm and on Saturday from "
        "8 am to noon.",
    ),
    (
        "p",
        "The finance desk is open Monday to Friday from 10 am to 7 pm and on Saturday from "
        "10 am to 4 pm.",
    ),
    (
        "p",
        "The collision body shop is open Monday to Friday from 8 am to 5 pm and is closed on "
        "weekends.",
    ),
    ("p", "The service department, parts counter and finance desk are closed on Sunday."),
    ("h1", "Holiday closures"),
    (
        "p",
        "All departments are closed on New Year's Day, Memorial Day, Independence Day, "
        "Labor Day, Thanksgiving Day and Christmas Day.",
    ),
    ("p", "On Christmas Eve and New Year's Eve, all departments close by 3 pm."),
    (
        "p",
        "On the day after Thanksgiving, the showroom keeps its regular hours, but the service "
        "department, parts counter and body shop are closed.",
    ),
    ("h1", "Directions and parking"),
    (
        "p",
        "From Interstate 90, take exit 14 for Harbor Road and turn right at the end of the "
        "ramp. Demo Motors is one mile down Harbor Road on the left, just past the fire "
        "station.",
    ),
    (
        "p",
        "From downtown Springfield, drive south on Main Street for 2 miles and turn left onto "
        "Harbor Road.",
    ),
    ("p", "Customer parking is free, with 80 spaces in front of the showroom."),
    (
        "p",
        "Service customers drive into the covered service lane on the south side of the "
        "building.",
    ),
    (
        "p",
        "Customers can charge electric cars for free at the two charging stations in the "
        "customer lot.",
    ),
    (
        "p",
        "City bus line 7 stops at Harbor Road and Pine Street, a two-minute walk from the "
        "showroom.",
    ),
    ("h1", "Contact"),
    ("p", "The main phone number of Demo Motors is 555 0140."),
    ("p", "The sales team can be reached by phone at 555 0141."),
    ("p", "The parts counter can be reached by phone at 555 0143."),
    ("p", "The finance desk can be reached by phone at 555 0144."),
    ("p", "The body shop can be reached by phone at 555 0145."),
    ("p", "General questions can be sent by email to info@demomotors.example."),
    ("p", "The sales team answers email at sales@demomotors.example."),
    ("p", "Parts orders can be sent by email to parts@demomotors.example."),
    (
        "p",
        "The Demo Motors website is www.demomotors.example, where you can browse the "
        "inventory and book service.",
    ),
    (
        "p",
        "Messages left on the main line after hours are returned on the next business day.",
    ),
]

SERVICE = [
    ("title", "Demo Motors Service Menu"),
    (
        "p",
        "Menu prices include parts and labor for most Honda and Toyota cars and small SUVs.\n"
        "Prices for trucks, large SUVs and other makes may be higher.",
    ),
    ("h1", "Oil changes and routine maintenance"),
    (
        "p",
        "A standard oil change costs 49 dollars and takes about 45 minutes.\n"
        "Tire rotation is free with any oil change.\n"
        "A full synthetic oil change costs 79 dollars and takes about 50 minutes.\n"
        "Oil changes are done without an appointment, but booking ahead shortens the wait.",
    ),
    (
        "p",
        "A tire rotation without an oil change costs 25 dollars and takes about 30 minutes.\n"
        "Replacing the cabin air filter costs 45 dollars and takes about 15 minutes.\n"
        "Replacing the engine air filter costs 39 dollars and takes about 10 minutes.\n"
        "A pair of new wiper blades costs 29 dollars, installed in about 5 minutes.\n"
        "A multi-point inspection is free with every service visit.",
    ),
    ("h1", "Brakes, tires and alignment"),
    (
        "p",
        "Replacing the brake pads costs 189 dollars per axle and takes about 90 minutes.\n"
        "New brake pads and rotors cost 389 dollars per axle and take about two hours.\n"
        "A brake fluid flush costs 99 dollars and takes about 40 minutes.",
    ),
    (
        "p",
        "A four-wheel alignment costs 119 dollars and takes about one hour.\n"
        "Mounting and balancing four tires costs 80 dollars and takes about one hour.\n"
        "Repairing a flat tire costs 30 dollars and takes about 20 minutes.",
    ),
    ("page",),
    ("h1", "Battery, engine and inspections"),
    (
        "p",
        "Battery testing is free.\n"
        "A new battery costs from 169 dollars installed, and the swap takes about 30 minutes.\n"
        "A coolant flush costs 139 dollars and takes about one hour.\n"
        "A transmission fluid service costs 199 dollars and takes about 90 minutes.\n"
        "New spark plugs for a four-cylinder engine cost 159 dollars, fitted in about one hour.\n"
        "An air conditioning service costs 149 dollars and takes about one hour.",
    ),
    (
        "p",
        "A check engine light diagnosis costs 129 dollars.\n"
        "The diagnosis fee is credited toward the repair if we do the work.\n"
        "The state safety inspection costs 35 dollars and takes about 30 minutes.\n"
        "Repairs that are not on this menu are billed at 145 dollars per hour of labor.",
    ),
    ("h1", "Service specials"),
    (
        "p",
        "New service customers get 10 dollars off their first oil change at Demo Motors.\n"
        "Veterans and active military members get 10 percent off service labor.\n"
        "When you buy four tires from Demo Motors, the four-wheel alignment is free.\n"
        "The seasonal care package costs 99 dollars and adds wiper blades and a cabin filter\n"
        "to a standard oil change.\n"
        "Service specials cannot be combined with other offers.",
    ),
    ("page",),
    ("h1", "Booking, waiting and loaner cars"),
    (
        "p",
        "You can book a service appointment online or by phone at 555 0142.\n"
        "Loaner cars are available for repairs that take longer than one day.\n"
        "A free shuttle takes service customers home or to work within 10 miles.\n"
        "The customer lounge has free Wi-Fi, coffee and a play area for children.\n"
        "After hours, you can drop your key in the secure key box next to the service door.\n"
        "Before doing extra work, we text you photos and a price and wait for your approval.",
    ),
    (
        "p",
        "The service department has 14 service bays and 11 factory-trained technicians.\n"
        "We service all makes and models, not only Honda and Toyota.\n"
        "Repairs done at Demo Motors come with a 2 year or 24,000 mile parts and labor warranty.\n"
        "Service can be paid by cash, debit card, credit card or mobile wallet.",
    ),
    ("h1", "Collision repair"),
    (
        "p",
        "The body shop writes free collision repair estimates without an appointment.\n"
        "The body shop works with all major insurance companies.\n"
        "Customers of the body shop get a rental car at the insurance company's rate.",
    ),
]

FINANCE = [
    ("title", "Demo Motors financing and warranty guide"),
    ("h1", "Financing"),
    ("h2", "Lenders and trade-ins"),
    (
        "p",
        "Financing is available through Honda Financial Services and Toyota Financial "
        "Services. We accept trade-ins of any make and model.",
    ),
    ("p", "You are also welcome to bring a loan approval from your own bank or credit union."),
    (
        "p",
        "A trade-in appraisal takes about 30 minutes, and the written offer is good for 7 days.",
    ),
    (
        "p",
        "If you still owe money on your trade-in, we pay off the loan and apply any remaining "
        "equity to your purchase.",
    ),
    ("h2", "Applying for credit"),
    (
        "p",
        "You can fill out a credit application online or at the finance desk, and most "
        "decisions come back within one hour.",
    ),
    (
        "p",
        "Online pre-approval uses a soft credit check that does not affect your credit score.",
    ),
    (
        "p",
        "To finish a credit application, bring your driver's license, proof of insurance and "
        "your two most recent pay stubs.",
    ),
    (
        "p",
        "We work with buyers at every credit level, including buyers who are rebuilding their "
        "credit.",
    ),
    ("h2", "Rates, terms and down payment"),
    ("p", "Financing for new vehicles starts from 4.9 percent APR for qualified buyers."),
    (
        "p",
        "Financing for used and certified pre-owned vehicles starts from 6.9 percent APR for "
        "qualified buyers.",
    ),
    ("p", "Loan terms range from 24 to 72 months."),
    (
        "p",
        "We recommend a down payment of at least 10 percent, and zero-down offers are "
        "available for qualified buyers.",
    ),
    ("p", "There is no penalty for paying off a car loan early."),
    ("h2", "First-time buyers and graduates"),
    (
        "p",
        "The first-time buyer program helps customers with little or no credit history buy a "
        "new Honda or Toyota with 1,000 dollars down.",
    ),
    ("p", "Recent college graduates can get a 500 dollar rebate on a new Honda or Toyota."),
    ("h2", "Leasing"),
    (
        "p",
        "Leasing gives you a lower monthly payment and a new car every few years, while "
        "buying lets you keep the car with no mileage limits.",
    ),
    ("p", "Leases at Demo Motors run for 24 or 36 months."),
    (
        "p",
        "A standard lease includes 12,000 miles per year, and plans with 10,000 or 15,000 "
        "miles per year are also available.",
    ),
    ("p", "Each mile driven over the lease allowance costs 15 cents."),
    (
        "p",
        "At the end of a lease, you can return the car, buy it for the price set in the lease, "
        "or trade it in for a new one.",
    ),
    ("h1", "Warranty"),
    ("h2", "New car factory warranties"),
    (
        "p",
        "New Honda vehicles come with a 3 year or 36,000 mile bumper-to-bumper warranty and a "
        "5 year or 60,000 mile powertrain warranty.",
    ),
    (
        "p",
        "New Toyota vehicles come with a 3 year or 36,000 mile bumper-to-bumper warranty and a "
        "5 year or 60,000 mile powertrain warranty.",
    ),
    (
        "p",
        "Every new Toyota also includes ToyotaCare, which covers scheduled maintenance for 2 "
        "years or 25,000 miles.",
    ),
    (
        "p",
        "Factory warranty repairs can be done at any Honda or Toyota dealer in the United "
        "States.",
    ),
    ("h2", "Certified pre-owned warranty"),
    (
        "p",
        "Every certified pre-owned car comes with a 12 month or 12,000 mile limited warranty.",
    ),
    (
        "p",
        "Every certified pre-owned car passes a 160-point inspection and comes with a free "
        "vehicle history report.",
    ),
    ("h2", "Extended service contracts"),
    ("p", "An extended service contract can extend coverage up to 7 years or 100,000 miles."),
    (
        "p",
        "You can buy an extended service contract at any time before the factory "
        "bumper-to-bumper warranty ends.",
    ),
    ("p", "An extended service contract can be cancelled at any time for a prorated refund."),
    ("h2", "Warranty coverage at a glance"),
    (
        "table",
        [
            ["Coverage", "Years", "Miles"],
            ["Honda bumper-to-bumper", "3 years", "36,000 miles"],
            ["Honda powertrain", "5 years", "60,000 miles"],
            ["Toyota bumper-to-bumper", "3 years", "36,000 miles"],
            ["Toyota powertrain", "5 years", "60,000 miles"],
            ["ToyotaCare maintenance", "2 years", "25,000 miles"],
            ["Certified pre-owned limited warranty", "12 months", "12,000 miles"],
            ["Extended service contract, longest", "7 years", "100,000 miles"],
        ],
    ),
]

# (stock, condition, year, make, model, trim, color, miles, price in dollars)
VEHICLES = [
    ("H1031", "New", 2024, "Honda", "Civic", "Sport", "Sonic Gray Pearl", 8, "27,450"),
    ("H1044", "New", 2024, "Honda", "CR-V", "EX", "Canyon River Blue Metallic", 5, "33,650"),
    ("H1052", "New", 2024, "Honda", "Accord", "Hybrid Sport", "Platinum White Pearl", 12,
     "33,990"),
    ("T2017", "New", 2024, "Toyota", "Camry", "SE", "Midnight Black Metallic", 6, "28,960"),
    ("T2023", "New", 2024, "Toyota", "RAV4", "XLE", "Cavalry Blue", 9, "32,150"),
    ("T2031", "New", 2024, "Toyota", "Corolla", "LE", "Classic Silver Metallic", 4, "23,140"),
    ("T2036", "New", 2024, "Toyota", "Tacoma", "TRD Sport", "Super White", 11, "39,480"),
    ("U3005", "Certified pre-owned", 2021, "Honda", "Accord", "EX", "Lunar Silver Metallic",
     34200, "24,300"),
    ("U3011", "Certified pre-owned", 2022, "Toyota", "Highlander", "XLE",
     "Magnetic Gray Metallic", 28750, "36,900"),
    ("U3018", "Certified pre-owned", 2020, "Ford", "F-150", "XLT", "Agate Black", 41600,
     "32,450"),
]


def vehicle_sentence(v) -> str:
    stock, condition, year, make, model, trim, color, miles, price = v
    kind = "new" if condition == "New" else "certified pre-owned"
    return (
        f"The {kind} {year} {make} {model} {trim} in {color}, stock number {stock}, "
        f"has {miles:,} miles and costs {price} dollars."
    )


def inventory_blocks():
    rows = [["Stock number", "Condition", "Year", "Make", "Model", "Trim", "Color", "Miles",
             "Price in dollars"]]
    for v in VEHICLES:
        stock, condition, year, make, model, trim, color, miles, price = v
        rows.append([stock, condition, str(year), make, model, trim, color, f"{miles:,}", price])
    blocks = [
        ("title", "Demo Motors vehicle inventory"),
        ("h1", "Prices and test drives"),
        (
            "p",
            "The 2024 Honda Civic LX starts at 24,950 dollars. The 2024 Toyota RAV4 LE starts "
            "at 29,800 dollars.",
        ),
        (
            "p",
            "Test drives are available every day the showroom is open, and no appointment is "
            "needed.",
        ),
        (
            "p",
            "The inventory changes every day, so please call the sales team to confirm that a "
            "vehicle is still available.",
        ),
        ("h1", "Vehicles in stock"),
        ("table", rows),
        ("h1", "Vehicle details"),
    ]
    blocks += [("p", vehicle_sentence(v)) for v in VEHICLES]
    return blocks


POLICIES = [
    ("title", "Demo Motors buying policies"),
    ("h1", "Deposits and factory orders"),
    ("p", "A deposit of 500 dollars holds a vehicle for 48 hours."),
    ("p", "A vehicle deposit is fully refunded if you decide not to buy the vehicle."),
    (
        "p",
        "A factory order for a new Honda or Toyota needs a deposit of 1,000 dollars and "
        "usually arrives in 6 to 10 weeks.",
    ),
    ("h1", "Returns"),
    (
        "p",
        "Used and certified pre-owned vehicles can be returned for a full refund within 3 "
        "days or 150 miles, whichever comes first.",
    ),
    ("p", "A returned vehicle must be in the same condition as when it was delivered."),
    ("p", "New vehicles cannot be returned after they are registered."),
    ("h1", "Prices and fees"),
    (
        "p",
        "Advertised prices do not include sales tax, title, registration or the documentation "
        "fee.",
    ),
    ("p", "The documentation fee at Demo Motors is 299 dollars."),
    ("p", "Demo Motors never adds a markup above the sticker price of a new vehicle."),
    ("h1", "Payment"),
    (
        "p",
        "Vehicle purchases can be paid by cashier's check, personal check, debit card or wire "
        "transfer.",
    ),
    (
        "p",
        "Credit cards are accepted for deposits and for up to 5,000 dollars of a down payment.",
    ),
    (
        "p",
        "You can complete most of a purchase online and sign the final papers at the "
        "dealership or at home.",
    ),
    ("h1", "Delivery"),
    (
        "p",
        "Demo Motors delivers a purchased vehicle to your home free of charge within 50 miles "
        "of the dealership.",
    ),
    ("p", "Delivery farther than 50 miles costs 2 dollars per mile."),
    ("p", "Most vehicles are delivered within two business days after the paperwork is signed."),
    (
        "p",
        "Every new vehicle is delivered with a full tank of fuel and a walk-through of its "
        "features.",
    ),
]

# (question, expected facts, document); the expected strings must all appear in the answer
# sentence. The first five are the questions of tests/api/voice.rs.
QA = [
    ("What time does the service department open on Saturday?", ["8 am to 2 pm"],
     "about-and-hours.md"),
    ("How much does an oil change cost?", ["costs 49 dollars"], "service-menu.pdf"),
    ("How long does an oil change take?", ["45 minutes"], "service-menu.pdf"),
    ("Do I need an appointment for a test drive?", ["no appointment"], "inventory.md"),
    ("Are you open on Sunday?", ["closed on Sunday"], "about-and-hours.md"),
    # about-and-hours.md
    ("What time do you close tonight, it's a Wednesday?", ["9 am to 7 pm"],
     "about-and-hours.md"),
    ("Can I pick up a part on Saturday afternoon?", ["noon"], "about-and-hours.md"),
    ("When can I talk to someone about a car loan during the week?", ["10 am"],
     "about-and-hours.md"),
    ("Is the body shop open on weekends?", ["closed on weekends"], "about-and-hours.md"),
    ("Are you open on Independence Day?", ["closed", "Independence Day"],
     "about-and-hours.md"),
    ("What time do you close on Christmas Eve?", ["3 pm"], "about-and-hours.md"),
    ("Which highway exit do I take to get to you?", ["exit 14"], "about-and-hours.md"),
    ("Where exactly is the dealership?", ["1200 Harbor Road"], "about-and-hours.md"),
    ("What's the phone number for the finance people?", ["555 0144"], "about-and-hours.md"),
    ("Can I get my brakes done on a Saturday?", ["8 am to 2 pm"], "about-and-hours.md"),
    # service-menu.pdf
    ("What do you charge to replace brake pads?", ["189 dollars"], "service-menu.pdf"),
    ("What do you charge for a wheel alignment?", ["119 dollars"], "service-menu.pdf"),
    ("I just need my tires rotated, how much is that?", ["25 dollars"], "service-menu.pdf"),
    ("My battery is dead, how much is a new one?", ["169 dollars"], "service-menu.pdf"),
    ("How long does a transmission fluid service take?", ["transmission", "90 minutes"],
     "service-menu.pdf"),
    ("My check engine light is on, what does it cost to find out why?", ["129 dollars"],
     "service-menu.pdf"),
    ("Do I get a car to drive while mine is in the shop for a few days?", ["loaner cars", "one day"],
     "service-menu.pdf"),
    ("How do I book a service appointment?", ["555 0142"], "service-menu.pdf"),
    ("Do you have a discount for veterans?", ["10 percent", "labor"], "service-menu.pdf"),
    ("Do you also work on other brands, not just Honda and Toyota?", ["all makes"],
     "service-menu.pdf"),
    # financing-and-warranty.docx
    ("Which banks do you finance through?", ["Honda Financial Services"],
     "financing-and-warranty.docx"),
    ("What's the lowest interest rate on a new car?", ["4.9 percent"],
     "financing-and-warranty.docx"),
    ("How long can I stretch a car loan?", ["72 months"], "financing-and-warranty.docx"),
    ("I've never had a car loan before, can you help me?", ["first-time buyer program"],
     "financing-and-warranty.docx"),
    ("How many miles a year do I get on a lease?", ["12,000 miles per year"],
     "financing-and-warranty.docx"),
    ("How long is the powertrain warranty on a new Toyota?", ["Toyota", "5 year or 60,000 mile"],
     "financing-and-warranty.docx"),
    ("What warranty comes with a certified pre-owned car?", ["12 month or 12,000 mile"],
     "financing-and-warranty.docx"),
    ("Will you take my old car as a trade-in even if it's not a Honda?", ["any make"],
     "financing-and-warranty.docx"),
    # inventory.md
    ("How much is the Civic LX?", ["24,950 dollars"], "inventory.md"),
    ("Do you have a RAV4 XLE in stock, and what's the price?", ["32,150 dollars"],
     "inventory.md"),
    ("How many miles are on the used Highlander?", ["28,750 miles"], "inventory.md"),
    # buying-policies.txt
    ("If I change my mind about a used car, can I bring it back?", ["3 days"],
     "buying-policies.txt"),
    ("How much is the doc fee?", ["299 dollars"], "buying-policies.txt"),
    ("Can you deliver the car to my house?", ["free of charge"], "buying-policies.txt"),
    ("How much do I have to put down to hold a car?", ["500 dollars"], "buying-policies.txt"),
]

UNANSWERABLE = [
    "How much does a Tesla Model Y cost?",
    "What does a new Hyundai Tucson cost?",
    "Can I bring my dog to the showroom?",
    "What is the towing capacity of the Tacoma?",
    "Do you rent out moving trucks?",
    "What's the price of a 2019 Civic?",
]

# ---------------------------------------------------------------------------------------
# Markdown and plain text
# ---------------------------------------------------------------------------------------


def paragraphs(text: str) -> str:
    """Paragraph text for the line-based formats: one paragraph, one line."""
    return " ".join(part.strip() for part in text.split("\n"))


def render_markdown(blocks) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "title":
            out.append(f"# {block[1]}")
        elif kind == "h1":
            out.append(f"## {block[1]}")
        elif kind == "h2":
            out.append(f"### {block[1]}")
        elif kind == "p":
            out.append(paragraphs(block[1]))
        elif kind == "table":
            rows = block[1]
            lines = ["| " + " | ".join(rows[0]) + " |",
                     "|" + "|".join(" --- " for _ in rows[0]) + "|"]
            lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
            out.append("\n".join(lines))
        else:
            raise ValueError(kind)
    return "\n\n".join(out) + "\n"


def render_text(blocks) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind in ("title", "h1", "h2"):
            out.append(block[1])
        elif kind == "p":
            out.append(paragraphs(block[1]))
        else:
            raise ValueError(kind)
    return "\n\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------
# PDF 1.4, hand-written: Helvetica and Helvetica-Bold (standard Type1, WinAnsiEncoding),
# one uncompressed content stream per page, text drawn line by line.
# ---------------------------------------------------------------------------------------

# Helvetica advance widths (1/1000 em) for ASCII 32..126, from the standard AFM metrics.
HELVETICA_WIDTHS = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
]

PAGE_W, PAGE_H = 612, 792  # US letter
MARGIN = 72
TEXT_W = PAGE_W - 2 * MARGIN
MAX_CHARS = 90
STYLES = {  # font resource, size, leading, space before
    "title": ("F2", 20, 26, 0),
    "h1": ("F2", 14, 20, 14),
    "p": ("F1", 10, 14, 6),
}


def text_width(text: str, size: int) -> float:
    return sum(HELVETICA_WIDTHS[ord(c) - 32] for c in text) * size / 1000


def wrap(text: str, size: int) -> list[str]:
    """Lines of at most MAX_CHARS characters that fit the text width, broken between words."""
    lines: list[str] = []
    for source_line in text.split("\n"):
        line = ""
        for word in source_line.split(" "):
            candidate = f"{line} {word}" if line else word
            if line and (len(candidate) > MAX_CHARS or text_width(candidate, size) > TEXT_W):
                lines.append(line)
                line = word
            else:
                line = candidate
        if line:
            lines.append(line)
    return lines


def pdf_string(text: str) -> str:
    for c in text:
        if not 32 <= ord(c) <= 126:
            raise ValueError(f"non-ASCII character {c!r} in PDF text {text!r}")
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def layout_pdf(blocks) -> list[bytes]:
    """Content streams, one per page."""
    pages: list[list[str]] = [[]]
    y = PAGE_H - MARGIN
    first_on_page = True
    for block in blocks:
        if block[0] == "page":
            pages.append([])
            y = PAGE_H - MARGIN
            first_on_page = True
            continue
        font, size, leading, before = STYLES[block[0]]
        lines = wrap(block[1], size)
        if not first_on_page:
            y -= before
        y -= size  # baseline of the first line
        bottom = y - leading * (len(lines) - 1)
        if bottom < MARGIN:
            raise ValueError(f"page overflow at {block[1][:40]!r}; add a page break")
        ops = ["BT", f"/{font} {size} Tf", f"{leading} TL", f"{MARGIN} {y} Td"]
        for i, line in enumerate(lines):
            if i:
                ops.append("T*")
            ops.append(f"{pdf_string(line)} Tj")
        ops.append("ET")
        pages[-1].extend(ops)
        y = bottom - (leading - size)
        first_on_page = False
    return [("\n".join(ops) + "\n").encode("ascii") for ops in pages]


def render_pdf(blocks, title: str) -> bytes:
    streams = layout_pdf(blocks)
    n = len(streams)
    # Objects: 1 catalog, 2 pages, 3 Helvetica, 4 Helvetica-Bold, 5 info,
    # then for each page: page object, content stream.
    page_ids = [6 + 2 * i for i in range(n)]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        (
            "<< /Type /Pages /Kids ["
            + " ".join(f"{p} 0 R" for p in page_ids)
            + f"] /Count {n} >>"
        ).encode("ascii"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold "
        b"/Encoding /WinAnsiEncoding >>",
        (
            f"<< /Title {pdf_string(title)} /Author (Demo Motors) "
            "/Producer (scripts/demo/make_demo_kb.py) >>"
        ).encode("ascii"),
    ]
    for i, stream in enumerate(streams):
        objects.append(
            (
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] "
                "/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> "
                f"/Contents {page_ids[i] + 1} 0 R >>"
            ).encode("ascii")
        )
        objects.append(
            f"<< /Length {len(stream)} >>\nstream\n".encode("ascii") + stream + b"endstream"
        )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode("ascii") + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode("ascii")
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode("ascii")
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 5 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode("ascii")
    return bytes(out)


# ---------------------------------------------------------------------------------------
# DOCX (WordprocessingML), minimal: content types, package and document relationships,
# styles (Normal, Title, Heading1, Heading2, TableGrid) and the document.
# ---------------------------------------------------------------------------------------

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

CONTENT_TYPES = (
    XML_DECL
    + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    '<Override PartName="/word/styles.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>'
    "</Types>"
)

PACKAGE_RELS = (
    XML_DECL
    + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/>'
    "</Relationships>"
)

DOCUMENT_RELS = (
    XML_DECL
    + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/styles" Target="styles.xml"/>'
    "</Relationships>"
)


def paragraph_style(style_id: str, name: str, size: int, bold: bool, before: int,
                    after: int, outline: int | None) -> str:
    ppr = f'<w:keepNext/><w:spacing w:before="{before}" w:after="{after}"/>'
    if outline is not None:
        ppr += f'<w:outlineLvl w:val="{outline}"/>'
    rpr = ("<w:b/>" if bold else "") + f'<w:sz w:val="{size}"/><w:szCs w:val="{size}"/>'
    return (
        f'<w:style w:type="paragraph" w:styleId="{style_id}"><w:name w:val="{name}"/>'
        '<w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:qFormat/>'
        f"<w:pPr>{ppr}</w:pPr><w:rPr>{rpr}</w:rPr></w:style>"
    )


def border_set(tag: str) -> str:
    sides = "".join(
        f'<w:{side} w:val="single" w:sz="4" w:space="0" w:color="auto"/>'
        for side in ("top", "left", "bottom", "right", "insideH", "insideV")
    )
    return f"<w:{tag}>{sides}</w:{tag}>"


STYLES_XML = (
    XML_DECL
    + f'<w:styles xmlns:w="{W_NS}">'
    "<w:docDefaults><w:rPrDefault><w:rPr>"
    '<w:rFonts w:ascii="Calibri" w:hAnsi="Calibri" w:eastAsia="Calibri" w:cs="Calibri"/>'
    '<w:sz w:val="22"/><w:szCs w:val="22"/><w:lang w:val="en-US"/>'
    "</w:rPr></w:rPrDefault>"
    '<w:pPrDefault><w:pPr><w:spacing w:after="160" w:line="259" w:lineRule="auto"/>'
    "</w:pPr></w:pPrDefault></w:docDefaults>"
    '<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/>'
    "<w:qFormat/></w:style>"
    + paragraph_style("Title", "Title", 48, True, 0, 240, None)
    + paragraph_style("Heading1", "heading 1", 32, True, 360, 120, 0)
    + paragraph_style("Heading2", "heading 2", 26, True, 240, 80, 1)
    + '<w:style w:type="table" w:default="1" w:styleId="TableNormal">'
    '<w:name w:val="Normal Table"/><w:uiPriority w:val="99"/><w:semiHidden/>'
    '<w:tblPr><w:tblInd w:w="0" w:type="dxa"/><w:tblCellMar>'
    '<w:top w:w="0" w:type="dxa"/><w:left w:w="108" w:type="dxa"/>'
    '<w:bottom w:w="0" w:type="dxa"/><w:right w:w="108" w:type="dxa"/>'
    "</w:tblCellMar></w:tblPr></w:style>"
    '<w:style w:type="table" w:styleId="TableGrid"><w:name w:val="Table Grid"/>'
    '<w:basedOn w:val="TableNormal"/><w:pPr><w:spacing w:after="0" w:line="240" '
    'w:lineRule="auto"/></w:pPr><w:tblPr>' + border_set("tblBorders") + "</w:tblPr></w:style>"
    "</w:styles>"
)


def xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def docx_paragraph(text: str, style: str | None = None, bold: bool = False) -> str:
    ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    rpr = "<w:rPr><w:b/></w:rPr>" if bold else ""
    return f'<w:p>{ppr}<w:r>{rpr}<w:t xml:space="preserve">{xml_text(text)}</w:t></w:r></w:p>'


def docx_table(rows: list[list[str]]) -> str:
    widths = [4680, 2340, 2340]  # twentieths of a point, 6.5 inches in all
    assert len(widths) == len(rows[0])
    out = [
        '<w:tbl><w:tblPr><w:tblStyle w:val="TableGrid"/><w:tblW w:w="9360" w:type="dxa"/>'
        '<w:tblLook w:val="04A0" w:firstRow="1" w:lastRow="0" w:firstColumn="1" '
        'w:lastColumn="0" w:noHBand="0" w:noVBand="1"/></w:tblPr><w:tblGrid>'
        + "".join(f'<w:gridCol w:w="{w}"/>' for w in widths)
        + "</w:tblGrid>"
    ]
    for r, row in enumerate(rows):
        header = r == 0
        out.append("<w:tr>" + ("<w:trPr><w:tblHeader/></w:trPr>" if header else ""))
        for cell, width in zip(row, widths):
            out.append(
                f'<w:tc><w:tcPr><w:tcW w:w="{width}" w:type="dxa"/></w:tcPr>'
                + docx_paragraph(cell, bold=header)
                + "</w:tc>"
            )
        out.append("</w:tr>")
    out.append("</w:tbl>")
    return "".join(out)


def render_docx_document(blocks) -> str:
    body = []
    for block in blocks:
        kind = block[0]
        if kind == "title":
            body.append(docx_paragraph(block[1], "Title"))
        elif kind == "h1":
            body.append(docx_paragraph(block[1], "Heading1"))
        elif kind == "h2":
            body.append(docx_paragraph(block[1], "Heading2"))
        elif kind == "p":
            body.append(docx_paragraph(paragraphs(block[1])))
        elif kind == "table":
            body.append(docx_table(block[1]))
            body.append("<w:p/>")  # Word wants a paragraph after a table
        else:
            raise ValueError(kind)
    section = (
        '<w:sectPr><w:pgSz w:w="12240" w:h="15840"/>'
        '<w:pgMar w:top="1440" w:right="1440" w:bottom="1440" w:left="1440" w:header="720" '
        'w:footer="720" w:gutter="0"/></w:sectPr>'
    )
    return (
        XML_DECL
        + f'<w:document xmlns:w="{W_NS}" xmlns:r="{R_NS}"><w:body>'
        + "".join(body)
        + section
        + "</w:body></w:document>"
    )


def write_zip(path: Path, entries: list[tuple[str, str]]) -> None:
    """A zip with fixed dates and attributes; entries are stored so the bytes do not
    depend on the zlib build."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # Unix, whatever the platform running this script
            info.external_attr = 0o100644 << 16
            archive.writestr(info, text.encode("utf-8"))


def render_docx(path: Path, blocks) -> None:
    write_zip(
        path,
        [
            ("[Content_Types].xml", CONTENT_TYPES),
            ("_rels/.rels", PACKAGE_RELS),
            ("word/document.xml", render_docx_document(blocks)),
            ("word/_rels/document.xml.rels", DOCUMENT_RELS),
            ("word/styles.xml", STYLES_XML),
        ],
    )


# ---------------------------------------------------------------------------------------


def write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    print(f"wrote {path.relative_to(ROOT)} ({len(data)} bytes)")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    write(OUT / "about-and-hours.md", render_markdown(ABOUT).encode("utf-8"))
    write(OUT / "service-menu.pdf", render_pdf(SERVICE, "Demo Motors Service Menu"))
    docx = OUT / "financing-and-warranty.docx"
    render_docx(docx, FINANCE)
    print(f"wrote {docx.relative_to(ROOT)} ({docx.stat().st_size} bytes)")
    write(OUT / "inventory.md", render_markdown(inventory_blocks()).encode("utf-8"))
    write(OUT / "buying-policies.txt", render_text(POLICIES).encode("utf-8"))
    lines = [
        json.dumps({"question": q, "expect": expect, "document": doc})
        for q, expect, doc in QA
    ]
    lines += [json.dumps({"question": q, "unanswerable": True}) for q in UNANSWERABLE]
    write(QUESTIONS, ("\n".join(lines) + "\n").encode("utf-8"))


if __name__ == "__main__":
    main()
