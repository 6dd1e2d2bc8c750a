"""schemathesis hooks for scripts/schema-fuzz.sh.

The fuzzer runs as one super_admin and learns that user's id (the token's `sub`), so it
would sooner or later set that user's password with `PATCH /v1/users/{id}`, which ends
every token issued before (401 for the rest of the run). Only that is taken out: a
`password` in a PATCH of the fuzzer's own user is dropped; everything else, including
that user's other fields, is sent as generated.
"""

import os

import schemathesis

OWN_ID = os.environ.get("ADAM_FUZZ_USER_ID", "")


@schemathesis.hook
def before_call(context, case, kwargs):
    if (
        case.operation.method.upper() == "PATCH"
        and case.operation.path == "/v1/users/{id}"
        and (case.path_parameters or {}).get("id") == OWN_ID
        and isinstance(case.body, dict)
    ):
        case.body.pop("password", None)
