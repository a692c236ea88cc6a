"""OpenAPI 3.1 path items for the OAuth routes, for the application's ``/openapi.json``.

The protocol endpoints answer in OAuth's own formats (RFC 6749 §5), so they are described with
their own schemas; client registration uses liftlog's error shape (``#/components/schemas/Error``).
"""

from __future__ import annotations

from typing import Any

TAG = "OAuth 2.0"
FORM = "application/x-www-form-urlencoded"
OAUTH_ERROR = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "error_description": {"type": "string"},
            },
        }
    }
}
ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
TOKENS = {
    "type": "object",
    "required": ["token_type", "access_token", "expires_in", "scope"],
    "properties": {
        "token_type": {"const": "Bearer"},
        "access_token": {"type": "string", "pattern": "^lloat_"},
        "expires_in": {"type": "integer"},
        "refresh_token": {"type": "string", "pattern": "^llort_"},
        "scope": {"type": "string"},
    },
}
CLIENT_METADATA = {
    "type": "object",
    "required": ["client_name", "redirect_uris"],
    "additionalProperties": False,
    "properties": {
        "client_name": {"type": "string", "maxLength": 255},
        "redirect_uris": {
            "type": "array",
            "minItems": 1,
            "maxItems": 10,
            "items": {"type": "string", "format": "uri"},
        },
        "scope": {"type": "string", "default": "read", "examples": ["read", "read write"]},
        "token_endpoint_auth_method": {
            "enum": ["client_secret_basic", "client_secret_post", "none"],
            "default": "client_secret_basic",
        },
    },
}


def _form(*required: str, **fields: str) -> dict[str, Any]:
    properties = {name: {"type": "string", "description": text} for name, text in fields.items()}
    schema = {"type": "object", "required": list(required), "properties": properties}
    return {"required": True, "content": {FORM: {"schema": schema}}}


def openapi_paths() -> dict[str, Any]:
    write = [{"bearer": ["write"]}]
    return {
        "/.well-known/oauth-authorization-server": {
            "get": {
                "tags": [TAG],
                "summary": "Authorization server metadata (RFC 8414)",
                "responses": {"200": {"description": "The metadata document."}},
            }
        },
        "/oauth/clients": {
            "get": {
                "tags": [TAG],
                "summary": "The account's OAuth clients, oldest first (never their secrets)",
                "security": [{"bearer": ["read"]}],
                "responses": {
                    "200": {"description": "A JSON array of clients (RFC 7591 metadata)."},
                    "401": {"description": "No valid personal access token.", "content": ERROR},
                    "403": {"description": "Not a personal access token.", "content": ERROR},
                },
            },
            "post": {
                "tags": [TAG],
                "summary": "Register an OAuth client (RFC 7591 metadata)",
                "security": write,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": CLIENT_METADATA}},
                },
                "responses": {
                    "201": {"description": "The client; `client_secret` is shown only here."},
                    "400": {"description": "Malformed metadata.", "content": ERROR},
                    "401": {"description": "No valid personal access token.", "content": ERROR},
                    "403": {
                        "description": "Not a personal access token with write.",
                        "content": ERROR,
                    },
                    "422": {"description": "Metadata breaks a rule.", "content": ERROR},
                },
            },
        },
        "/oauth/clients/{client_id}": {
            "delete": {
                "tags": [TAG],
                "summary": "Delete a client and revoke every token issued to it",
                "security": write,
                "parameters": [
                    {
                        "name": "client_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "204": {"description": "Deleted."},
                    "404": {"description": "No such client in this account.", "content": ERROR},
                },
            }
        },
        "/oauth/authorize": {
            "get": {
                "tags": [TAG],
                "summary": "Consent page (authorization code request with PKCE S256)",
                "parameters": [
                    {
                        "name": name,
                        "in": "query",
                        "required": name != "state",
                        "schema": {"type": "string"},
                    }
                    for name in (
                        "response_type",
                        "client_id",
                        "redirect_uri",
                        "scope",
                        "state",
                        "code_challenge",
                        "code_challenge_method",
                    )
                ],
                "responses": {
                    "200": {"description": "The consent page (HTML)."},
                    "302": {"description": "An error the client may see, at its redirect URI."},
                    "400": {"description": "An untrustworthy request, explained (HTML)."},
                },
            },
            "post": {
                "tags": [TAG],
                "summary": "The resource owner's decision on the consent page",
                "requestBody": _form(
                    "request_id",
                    request_id="The consent form's single-use nonce.",
                    token="The owner's personal access token.",
                    decision="approve or deny.",
                ),
                "responses": {
                    "302": {"description": "To the redirect URI with `code` or `error`."},
                    "400": {"description": "An unknown, spent or expired form (HTML)."},
                    "401": {"description": "Not a valid personal access token (HTML)."},
                    "403": {"description": "The token can't grant the scope (HTML)."},
                },
            },
        },
        "/oauth/token": {
            "post": {
                "tags": [TAG],
                "summary": "Token endpoint: authorization_code (with code_verifier), refresh_token",
                "requestBody": _form(
                    "grant_type",
                    grant_type="authorization_code or refresh_token.",
                    code="The authorization code.",
                    redirect_uri="The redirect URI of the authorization request.",
                    code_verifier="The PKCE verifier.",
                    refresh_token="The newest refresh token.",
                    scope="Optional, to narrow the scope on refresh.",
                    client_id="Public clients only.",
                    client_secret="client_secret_post only.",
                ),
                "responses": {
                    "200": {
                        "description": "Tokens.",
                        "content": {"application/json": {"schema": TOKENS}},
                    },
                    "400": {"description": "An OAuth error.", "content": OAUTH_ERROR},
                    "401": {
                        "description": "Client authentication failed.",
                        "content": OAUTH_ERROR,
                    },
                },
            }
        },
        "/oauth/revoke": {
            "post": {
                "tags": [TAG],
                "summary": "Revoke a token and the authorization it belongs to (RFC 7009)",
                "requestBody": _form(
                    "token",
                    token="An access or refresh token.",
                    token_type_hint="access_token or refresh_token.",
                ),
                "responses": {
                    "200": {"description": "Revoked, or unknown."},
                    "400": {"description": "An OAuth error.", "content": OAUTH_ERROR},
                },
            }
        },
    }
