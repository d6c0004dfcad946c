// Gallery: every entry as a thumbnail grid, filtered by identity or camera and paged with the
// API's cursors; and the identities with their entry counts, paged the same way.

import { getJson } from "./api.js";
import { failureText, field, h, identityLink, message, thumbnail } from "./dom.js";

const PAGE = 48;

/** A list that pages with next_cursor; "First page" goes back to the start. */
function pager(load, drawItems, container, name) {
  let cursor = null;
  const next = h("button", { type: "button", id: `${name}-next` }, "Next page");
  const first = h("button", { type: "button", id: `${name}-first` }, "First page");
  const body = h("div");
  async function show() {
    let page;
    try {
      page = await load(cursor);
    } catch (failure) {
      body.replaceChildren(message("error", failureText(failure)));
      return;
    }
    body.replaceChildren(page.items.length ? drawItems(page.items) : message("note", "Nothing here."));
    next.hidden = !page.next_cursor;
    first.hidden = cursor === null;
    next.onclick = () => {
      cursor = page.next_cursor;
      show();
    };
  }
  first.onclick = () => {
    cursor = null;
    show();
  };
  container.append(body, h("div", { class: "row" }, first, next));
  return {
    reset() {
      cursor = null;
      return show();
    },
  };
}

function entryGrid(entries) {
  return h(
    "ul",
    { class: "grid", id: "gallery-grid" },
    ...entries.map((entry) =>
      h(
        "li",
        { class: "tile", dataset: { identity: entry.identity, entry: entry.id } },
        h("a", { href: `#/identity/${encodeURIComponent(entry.identity)}` }, thumbnail(entry)),
        h("span", {}, entry.identity),
        h("span", { class: "muted" }, entry.camera ?? "no camera"),
      ),
    ),
  );
}

function identityTable(identities) {
  return h(
    "table",
    { id: "identity-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "identity"), h("th", {}, "entries"), h("th", {}, "last enrolled"))),
    h(
      "tbody",
      {},
      ...identities.map((row) =>
        h(
          "tr",
          { dataset: { identity: row.identity } },
          h("td", {}, identityLink(row.identity)),
          h("td", {}, String(row.entry_count)),
          h("td", {}, row.last_enrolled_at ?? "—"),
        ),
      ),
    ),
  );
}

export async function render(view, context) {
  const flash = context.flash;
  context.flash = null;
  const filters = h(
    "form",
    { id: "gallery-filters", class: "panel row" },
    field("Identity", { id: "gallery-identity", name: "identity", maxlength: 128 }),
    field("Camera", { id: "gallery-camera", name: "camera", maxlength: 64 }),
    h("button", { type: "submit" }, "Filter"),
  );
  const entries = h("section", { "aria-labelledby": "entries-title" }, h("h2", { id: "entries-title" }, "Entries"));
  const people = h("section", { "aria-labelledby": "people-title" }, h("h2", { id: "people-title" }, "Identities"));
  const entryPager = pager(
    (cursor) => {
      const query = new URLSearchParams({ limit: PAGE });
      for (const name of ["identity", "camera"]) {
        const value = filters.elements[name].value.trim();
        if (value) query.set(name, value);
      }
      if (cursor) query.set("cursor", cursor);
      return getJson(`/gallery?${query}`);
    },
    entryGrid,
    entries,
    "entries",
  );
  const peoplePager = pager(
    (cursor) => getJson(`/identities?limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`),
    identityTable,
    people,
    "identities",
  );
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    entryPager.reset();
  });
  view.append(h("h1", {}, "Gallery"), ...(flash ? [message("status", flash)] : []), filters, entries, people);
  await Promise.all([entryPager.reset(), peoplePager.reset()]);
}
