"""The ``/docs`` page: one HTML document with inline CSS and script, nothing fetched from
elsewhere. It reads ``/openapi.json`` and renders a form per operation (token, parameters, body)
whose Send button calls the API with ``fetch`` and shows status, headers and body. Everything the
document contains is inserted as text, never as HTML."""

from __future__ import annotations

DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>liftlog API</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
details { border: 1px solid #ccc; border-radius: 4px; margin: .4em 0; padding: .3em .6em; }
summary { cursor: pointer; }
.m { display: inline-block; width: 4.5em; font-weight: bold; font-family: monospace; }
.p { font-family: monospace; }
label { display: block; margin: .3em 0; } label span { display: inline-block; width: 10em; }
textarea { width: 100%; height: 8em; font-family: monospace; }
pre { background: #f6f6f6; padding: .5em; overflow: auto; max-height: 30em; }
#token { width: 30em; }
</style>
</head>
<body>
<h1 id="title">liftlog API</h1>
<p id="description"></p>
<p><label><span>Bearer token</span><input id="token" type="password"
  placeholder="llpat_... (liftlog token create)"></label></p>
<div id="operations">Loading /openapi.json ...</div>
<script>
"use strict";
function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
const token = document.getElementById("token");
token.value = sessionStorage.getItem("liftlog-token") || "";
token.addEventListener("change", () => sessionStorage.setItem("liftlog-token", token.value));

function skeleton(doc, ref) {
  const name = ref.split("/").pop();
  const schema = doc.components.schemas[name] || {};
  const out = {};
  for (const key of schema.required || []) {
    const prop = (schema.properties || {})[key] || {};
    out[key] = prop.type === "integer" ? 0 : prop.type === "array" ? [] : "";
  }
  return JSON.stringify(out, null, 2);
}

function operation(doc, path, method, op) {
  const box = el("details");
  const summary = el("summary");
  summary.append(el("span", {class: "m"}, method.toUpperCase()), el("span", {class: "p"}, path),
                 document.createTextNode("  " + (op.summary || "")));
  box.append(summary);
  const inputs = [];
  for (const p of op.parameters || []) {
    const label = el("label");
    const input = el("input", {"data-in": p.in, "data-name": p.name});
    label.append(el("span", {}, p.name + (p.required ? " *" : "") + " (" + p.in + ")"), input);
    if (p.description) label.append(document.createTextNode(" " + p.description));
    inputs.push(input);
    box.append(label);
  }
  let body = null;
  const json = op.requestBody && op.requestBody.content["application/json"];
  if (json) {
    body = el("textarea");
    body.value = skeleton(doc, json.schema.$ref);
    box.append(body);
  }
  const send = el("button", {type: "button"}, "Send");
  const result = el("pre");
  box.append(send, result);
  send.addEventListener("click", async () => {
    let url = path;
    const query = new URLSearchParams();
    const headers = {};
    if (token.value) headers["Authorization"] = "Bearer " + token.value;
    for (const input of inputs) {
      const value = input.value;
      if (value === "") continue;
      const where = input.dataset.in, name = input.dataset.name;
      if (where === "path") url = url.replace("{" + name + "}", encodeURIComponent(value));
      else if (where === "query") query.append(name, value);
      else if (where === "header") headers[name] = value;
    }
    const qs = query.toString();
    const init = {method: method.toUpperCase(), headers};
    if (body) { init.body = body.value; headers["Content-Type"] = "application/json"; }
    result.textContent = "...";
    try {
      const response = await fetch(url + (qs ? "?" + qs : ""), init);
      const lines = [response.status + " " + response.statusText];
      for (const h of ["etag", "link", "x-total-count", "last-modified"]) {
        const v = response.headers.get(h);
        if (v) lines.push(h + ": " + v);
      }
      const text = await response.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) {}
      result.textContent = lines.join("\\n") + "\\n\\n" + shown;
    } catch (e) {
      result.textContent = String(e);
    }
  });
  return box;
}

fetch("/openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("title").textContent = doc.info.title + " " + doc.info.version;
  document.getElementById("description").textContent = doc.info.description || "";
  const root = document.getElementById("operations");
  root.textContent = "";
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ["Other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(doc, path, method, op));
    }
  }
  for (const [tag, boxes] of byTag) root.append(el("h2", {}, tag), ...boxes);
});
</script>
</body>
</html>
"""
