// What both pages (/ and /dashboard) share: the API key box, calls that carry the key, and
// element building. Loaded before each page's own script; no build step.
"use strict";
const keyBox = document.getElementById("key");
keyBox.value = localStorage.getItem("ocrflow-key") || "";

function key() { return keyBox.value.trim(); }

// Every API call carries the key, if there is one.
function api(path, options = {}) {
  return fetch(path, {...options, headers: key() ? {Authorization: `Bearer ${key()}`} : {}});
}

// EventSource sends no headers: the event feeds take the key as a query parameter.
function query() { return key() ? `?access_token=${encodeURIComponent(key())}` : ""; }

function el(tag, attrs = {}, ...children) {
  const {dataset, ...rest} = attrs;
  const node = Object.assign(document.createElement(tag), rest);
  Object.assign(node.dataset, dataset || {});
  node.append(...children);
  return node;
}

// With a key, a plain link cannot authenticate: fetch the file and hand it over as a blob.
// `refused(link, response)` says so on the page when the server does not give it.
async function download(event, refused) {
  if (!key()) return;
  event.preventDefault();
  const link = event.currentTarget, response = await api(link.href);
  if (!response.ok) { refused(link, response); return; }
  const name = /filename\*=UTF-8''([^;]+)/.exec(response.headers.get("Content-Disposition") || "");
  const save = el("a", {href: URL.createObjectURL(await response.blob()),
    download: name ? decodeURIComponent(name[1]) : link.textContent});
  save.click();
  setTimeout(() => URL.revokeObjectURL(save.href), 10000);
}
