use super::for_speech;

#[track_caller]
fn says(written: &str, spoken: &str) {
    assert_eq!(for_speech(written), spoken, "for {written:?}");
}

#[test]
fn prices() {
    says(
        "The 2024 Aurora starts at $27,900.",
        "The twenty twenty-four Aurora starts at twenty-seven thousand nine hundred dollars.",
    );
    says(
        "An oil change is $49.95, a wiper $1.",
        "An oil change is forty-nine dollars and ninety-five cents, a wiper one dollar.",
    );
    says("Only $0.50 more.", "Only fifty cents more.");
    says(
        "Lease from $199/month with $2.5k down.",
        "Lease from one hundred ninety-nine dollars a month with two point five thousand dollars down.",
    );
    says(
        "Budget $1.2 million.",
        "Budget one point two million dollars.",
    );
    says(
        "Brakes cost $199–$299.",
        "Brakes cost one hundred ninety-nine dollars to two hundred ninety-nine dollars.",
    );
}

#[test]
fn phone_numbers_digit_by_digit_in_groups() {
    says(
        "Call (555) 123-4567 today.",
        "Call five five five, one two three, four five six seven today.",
    );
    says(
        "Service: 555-201-0199.",
        "Service: five five five, two zero one, zero one nine nine.",
    );
    says(
        "Toll free 1-800-555-0100 or +1 555 867 5309",
        "Toll free one, eight zero zero, five five five, zero one zero zero or one, five five five, eight six seven, five three zero nine",
    );
    says(
        "Text 555.123.4567!",
        "Text five five five, one two three, four five six seven!",
    );
}

#[test]
fn times() {
    says(
        "We open at 7:30 am and close at 6 pm.",
        "We open at seven thirty a.m. and close at six p.m.",
    );
    says(
        "Hours: Mon–Fri 9am–6pm, Sat 9:00-5:00.",
        "Hours: Monday to Friday nine a.m. to six p.m., Saturday nine o'clock to five o'clock.",
    );
    says(
        "Pickup from 18:00 until 20:45.",
        "Pickup from six p.m. until eight forty-five p.m.",
    );
    says("Open 8:05 a.m. daily", "Open eight oh five a.m. daily");
    says("Open 9–5pm.", "Open nine p.m. to five p.m.");
    says(
        "Monday - Friday    9:00 am - 8:00 pm",
        "Monday to Friday nine a.m. to eight p.m.",
    );
}

#[test]
fn dates_are_month_first() {
    says(
        "Closed Dec 25 and 12/31.",
        "Closed December twenty-fifth and December thirty-first.",
    );
    says(
        "Sale ends Jan. 3rd, 2027.",
        "Sale ends January third, twenty twenty-seven.",
    );
    says(
        "Effective 2026-07-04 and 7/4/26.",
        "Effective July fourth, twenty twenty-six and July fourth, twenty twenty-six.",
    );
    says("Half off: 1/2 price.", "Half off: one half price.");
}

#[test]
fn years_ordinals_percentages_units() {
    says(
        "Our 2019 and 2005 models, the 1st and 22nd in line.",
        "Our twenty nineteen and two thousand five models, the first and twenty-second in line.",
    );
    says(
        "APR from 2.9% to 0%.",
        "A- P R from two point nine percent to zero percent.",
    );
    says(
        "It gets 35 mpg, 300hp, a 75kWh pack and 2.0L engine.",
        "It gets thirty-five miles per gallon, three hundred horsepower, a seventy-five kilowatt hours pack and two point zero liters engine.",
    );
    says(
        "Warranty: 2000 mi or 1 mi, 12,000 km.",
        "Warranty: two thousand miles or one mile, twelve thousand kilometers.",
    );
}

#[test]
fn addresses_and_abbreviations() {
    says(
        "Visit 1420 Harbor Rd. in Springfield.",
        "Visit fourteen twenty Harbor Road in Springfield.",
    );
    says(
        "We're at 12 N Main St., Ste. 200.",
        "We're at twelve North Main Street, Suite two hundred.",
    );
    says("Find us on Oak Ave", "Find us on Oak Avenue");
    says(
        "Near St. Mary's, ask Dr. Patel.",
        "Near Saint Mary's, ask Doctor Patel.",
    );
    says(
        "Take Hwy 101 to Elm St. Then turn left.",
        "Take Highway one hundred one to Elm Street. Then turn left.",
    );
    says("Parts & service", "Parts and service");
}

#[test]
fn vins_and_stock_numbers_are_spelled() {
    says(
        "VIN 1HGCM82633A004352 is ready.",
        "V I N one H G C, M eight two six, three three A- zero, zero four three five, two is ready.",
    );
    says(
        "Stock #A1234 and stock RT-4471.",
        "Stock number A- one two three four and stock R T four four seven one.",
    );
    says("Ask about B20931.", "Ask about B two zero nine three one.");
    // Model names stay words.
    says("The CX-5 and F-150.", "The CX-5 and F-150.");
}

#[test]
fn markdown_and_tables_are_not_read() {
    says(
        "Finance office ...... (920) 555-0158",
        "Finance office, nine two zero, five five five, zero one five eight",
    );
    says(
        "| Trim | MPG city / hwy | Cargo (cu ft) |",
        "Trim, MPG city, Highway, Cargo cu ft.",
    );
    says(
        "## Service hours\n- **Mon–Fri:** 7:30 am–6 pm\n- *Sat:* 8 am–2 pm",
        "Service hours. Monday to Friday: seven thirty a.m. to six p.m. Saturday: eight a.m. to two p.m.",
    );
    says(
        "| Service | Price |\n|---|---:|\n| Oil change | $49.95 |",
        "Service, Price. Oil change, forty-nine dollars and ninety-five cents.",
    );
    says(
        "See [our specials](https://example.com/specials) or `call` us. 1. First item",
        "See our specials or call us. one. First item",
    );
}

#[test]
fn mail_and_web_addresses() {
    says(
        "Write to sam.lee@harbor-motors.com or visit www.harbormotors.com/service-center.",
        "Write to sam dot lee at harbor dash motors dot com or visit harbormotors dot com slash service center.",
    );
    says(
        "Book at https://example.com/book?x=1",
        "Book at example dot com slash book",
    );
}

#[test]
fn plain_text_is_untouched() {
    for s in [
        "Yes, we can help with that.",
        "I don't know, but our team can tell you.",
        "The Meridian comes in three trims!",
    ] {
        says(s, s);
    }
}
