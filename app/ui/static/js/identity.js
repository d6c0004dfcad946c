// One identity: its crops by camera, its time range, and the right-to-erasure action behind a
// confirmation that names exactly what will be deleted.

import { getJson, remove } from "./api.js";
import { failureText, formatTime, h, message, thumbnail } from "./dom.js";

function entryCount(count) {
  return `${count} ${count === 1 ? "entry" : "entries"}`;
}

function timeRange(first, last) {
  if (!first) return "not given";
  return first === last ? formatTime(first) : `${formatTime(first)} to ${formatTime(last)}`;
}

function byCamera(entries) {
  const groups = new Map();
  for (const entry of entries) {
    const camera = entry.camera ?? "no camera";
    if (!groups.has(camera)) groups.set(camera, []);
    groups.get(camera).push(entry);
  }
  return [...groups.entries()].map(([camera, group]) =>
    h(
      "section",
      { class: "camera", dataset: { camera } },
      h("h3", {}, `${camera} (${group.length})`),
      h("ul", { class: "grid" }, ...group.map((entry) => h("li", { class: "tile" }, thumbnail(entry)))),
    ),
  );
}

function eraseDialog(detail, onConfirm) {
  const cameras = detail.cameras.length ? detail.cameras.join(", ") : "no camera";
  const status = h("p", { "aria-live": "polite" });
  const dialog = h(
    "dialog",
    { id: "erase-dialog", "aria-labelledby": "erase-title" },
    h("h2", { id: "erase-title" }, `Erase ${detail.identity}?`),
    h(
      "p",
      { id: "erase-summary" },
      `This deletes identity "${detail.identity}": ${entryCount(detail.entry_count)} ` +
        `(cameras: ${cameras}), their embeddings and their stored crops. It cannot be undone.`,
    ),
    status,
    h(
      "div",
      { class: "row" },
      h("button", { type: "button", id: "erase-cancel", onclick: () => dialog.close() }, "Cancel"),
      h(
        "button",
        {
          type: "button",
          id: "erase-confirm",
          class: "danger",
          onclick: async () => {
            try {
              await onConfirm();
              dialog.close();
            } catch (failure) {
              status.replaceChildren(message("error", failureText(failure)));
            }
          },
        },
        `Erase ${detail.identity}`,
      ),
    ),
  );
  return dialog;
}

export async function render(view, context, identity) {
  const detail = await getJson(`/identities/${encodeURIComponent(identity)}`);
  const header = h(
    "dl",
    { class: "facts" },
    h("dt", {}, "entries"),
    h("dd", { id: "identity-count" }, String(detail.entry_count)),
    h("dt", {}, "cameras"),
    h("dd", {}, detail.cameras.join(", ") || "—"),
    h("dt", {}, "captured"),
    h("dd", { id: "identity-captured" }, timeRange(detail.first_captured_at, detail.last_captured_at)),
    h("dt", {}, "enrolled"),
    h("dd", {}, timeRange(detail.first_enrolled_at, detail.last_enrolled_at)),
  );
  view.append(h("h1", {}, detail.identity), header);
  if (context.can("write")) {
    const dialog = eraseDialog(detail, async () => {
      const erased = await remove(`/identities/${encodeURIComponent(detail.identity)}`);
      context.flash = `Erased ${erased.identity}: ${entryCount(erased.deleted_entries)} deleted.`;
      context.go("#/gallery");
    });
    view.append(
      h("button", { type: "button", id: "erase", class: "danger", onclick: () => dialog.showModal() }, "Erase this identity…"),
      dialog,
    );
  }
  view.append(...byCamera(detail.entries));
  if (detail.entry_count > detail.entries.length) {
    view.append(
      h(
        "p",
        {},
        `Showing the first ${detail.entries.length} of ${detail.entry_count} entries; `,
        h("a", { href: "#/gallery" }, "the gallery page"),
        " pages through all of them.",
      ),
    );
  }
}
