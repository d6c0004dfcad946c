// Building DOM without innerHTML: identities, cameras and messages are data from users,
// so they only ever become text nodes and attribute values, never markup.

import { getBlob } from "./api.js";

/** h("a", {href: "#/x", class: "c", dataset: {identity: "bob"}}, "text", child) */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return element;
}

/** A labelled form field: the label's for= points at the input, as screen readers need. */
export function field(label, attributes, hint = null) {
  const input = h("input", attributes);
  return h(
    "div",
    { class: "field" },
    h("label", { for: attributes.id }, label),
    input,
    hint ? h("small", { id: `${attributes.id}-hint` }, hint) : null,
  );
}

export function checkbox(label, attributes) {
  return h(
    "div",
    { class: "field check" },
    h("input", { type: "checkbox", ...attributes }),
    h("label", { for: attributes.id }, label),
  );
}

export function message(kind, text) {
  return h("p", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** The text of an error, with the service's code: what an operator can act on. */
export function failureText(failure) {
  return failure.code ? `${failure.message} (${failure.code})` : String(failure);
}

/** Fill an <img> from an authenticated image route; the object URL is freed once drawn. */
export function loadInto(image, path) {
  getBlob(path)
    .then((blob) => {
      const url = URL.createObjectURL(blob);
      image.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
      image.src = url;
    })
    .catch(() => image.classList.add("missing"));
  return image;
}

/** A gallery entry's server-made thumbnail, with the identity and camera as its alt text. */
export function thumbnail(entry, size = 128) {
  const alt = `${entry.identity}${entry.camera ? `, camera ${entry.camera}` : ""}`;
  return loadInto(
    h("img", { class: `thumb thumb-${size}`, alt, dataset: { entry: entry.id } }),
    `/gallery/${entry.id}/thumbnail?size=${size}`,
  );
}

export function identityLink(identity) {
  return h("a", { href: `#/identity/${encodeURIComponent(identity)}` }, identity);
}

/** "2026-03-01T08:15" from a datetime-local input, sent as UTC (the API's rule for no zone). */
export function formatTime(value) {
  return value ? new Date(value).toISOString().replace(".000Z", "Z") : "—";
}

/** Drop the empty fields of a form, so the API applies its defaults instead of parsing "". */
export function filledForm(form) {
  const data = new FormData(form);
  for (const [name, value] of [...data.entries()]) {
    if (value === "" || (value instanceof File && value.name === "" && value.size === 0)) {
      data.delete(name);
    }
  }
  return data;
}
