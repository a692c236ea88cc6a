"""The consent page: one self-contained HTML document (no scripts, no external assets).

Every value that reaches the page is escaped with `html.escape`. The headers forbid framing (so
the page can't be overlaid by another site to trick a click), caching and referrers.
"""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

SCOPE_TEXT = {
    "read": "Read your projects, experiments, events, audiences, attributes and lists.",
    "write": "Create, change and delete them (includes read).",
}

HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

_STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; background: #f4f5f7; color: #1d2129; margin: 0; }
main { max-width: 32rem; margin: 3rem auto; background: #fff; padding: 2rem; border-radius: 8px; }
h1 { font-size: 1.3rem; margin-top: 0; }
.note { color: #5c6370; font-size: 0.9rem; }
.problem { background: #fdecea; color: #8a1c12; padding: 0.6rem 0.8rem; border-radius: 4px; }
label { display: block; font-weight: 600; margin-top: 1rem; }
input[type=password] { width: 100%; box-sizing: border-box; padding: 0.5rem; margin: 0.3rem 0; }
button { padding: 0.5rem 1.2rem; margin: 1rem 0.5rem 0 0; font-size: 1rem; }
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} · liftlog</title>
<style>{style}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""

_CONSENT = """<h1>Authorize {client}</h1>
<p><strong>{client}</strong> asks for access to your liftlog account:</p>
<ul>
{scopes}
</ul>
<p class="note">Whatever you decide, you will then be sent to <code>{redirect_uri}</code>.</p>
{problem}
<form method="post" action="{action}">
<input type="hidden" name="request_id" value="{request_id}">
{who}
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
"""

_SIGNED_IN = """<input type="hidden" name="csrf" value="{csrf}">
<p>You are signed in as <strong>{email}</strong>; access is to this account.</p>"""

_WITH_TOKEN = """<p><a href="{signin}">Sign in to liftlog</a> to decide, or prove that the account
is yours with one of your personal access tokens:</p>
<label for="token">Your personal access token</label>
<input id="token" name="token" type="password" autocomplete="off" spellcheck="false"
 placeholder="llpat_…">
<p class="note">It is not given to {client}.</p>"""

_ERROR = """<h1>This authorization request can't be completed</h1>
<p class="problem">{description}</p>
<p class="note">Error: <code>{error}</code>. Go back to the application and start again.</p>
"""


def _page(title: str, body: str, status: int) -> HTMLResponse:
    content = _PAGE.format(title=escape(title), style=_STYLE, body=body)
    return HTMLResponse(content, status_code=status, headers=HEADERS)


def consent_page(
    *,
    client_name: str,
    scope: str,
    redirect_uri: str,
    action: str,
    request_id: str,
    problem: str | None = None,
    status: int = 200,
    signed_in_as: str | None = None,
    csrf: str | None = None,
    signin_url: str | None = None,
) -> HTMLResponse:
    """The consent form: Allow / Deny for the signed-in user (``signed_in_as``, whose session's
    ``csrf`` token the form repeats), or a personal-access-token field and a sign-in link."""
    if signed_in_as is not None and csrf is not None:
        who = _SIGNED_IN.format(email=escape(signed_in_as), csrf=escape(csrf))
    else:
        who = _WITH_TOKEN.format(signin=escape(signin_url or "/ui/signin"),
                                 client=escape(client_name))  # fmt: skip
    scopes = "\n".join(
        f"<li><strong>{escape(s)}</strong>: {escape(SCOPE_TEXT.get(s, s))}</li>"
        for s in scope.split()
    )
    body = _CONSENT.format(
        client=escape(client_name),
        scopes=scopes,
        redirect_uri=escape(redirect_uri),
        problem="" if problem is None else f'<p class="problem">{escape(problem)}</p>',
        action=escape(action),
        request_id=escape(request_id),
        who=who,
    )
    return _page(f"Authorize {client_name}", body, status)


def error_page(error: str, description: str, status: int = 400) -> HTMLResponse:
    """Shown instead of redirecting when the client or its redirect URI can't be trusted
    (RFC 6749 §4.1.2.1), or when the consent form is stale."""
    body = _ERROR.format(error=escape(error), description=escape(description or error))
    return _page("Authorization failed", body, status)
