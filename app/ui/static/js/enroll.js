// Enroll: one identity, its camera and time, and several crops in one go. Each file is its
// own request (POST /gallery is all-or-nothing per request), so one bad file is reported
// beside the others instead of refusing the whole batch.

import { ApiFailure, sendForm } from "./api.js";
import { failureText, field, h, identityLink, message } from "./dom.js";

function enrollForm() {
  return h(
    "form",
    { id: "enroll-form", class: "panel" },
    h(
      "div",
      { class: "row" },
      field("Identity", { id: "enroll-identity", name: "identity", required: true, maxlength: 128 }),
      field("Camera", { id: "enroll-camera", name: "camera", maxlength: 64 }),
      field("Captured at (UTC)", { id: "enroll-time", name: "captured_at", type: "datetime-local" }),
    ),
    field("Crops", {
      id: "enroll-files",
      name: "images",
      type: "file",
      multiple: true,
      required: true,
      accept: "image/jpeg,image/png,image/webp",
    }),
    h("button", { type: "submit" }, "Enroll"),
  );
}

async function enrollOne(form, file) {
  const data = new FormData();
  for (const name of ["identity", "camera", "captured_at"]) {
    const value = form.elements[name].value.trim();
    if (value) data.append(name, value);
  }
  data.append("images", file, file.name);
  try {
    const answer = await sendForm("/gallery", data);
    const entry = answer.entries[0];
    return entry.created
      ? ["created", `entry ${entry.id}`]
      : ["already", `already enrolled as entry ${entry.id}`];
  } catch (failure) {
    if (failure instanceof ApiFailure) return ["refused", `refused: ${failureText(failure)}`];
    throw failure;
  }
}

export async function render(view) {
  const form = enrollForm();
  const area = h("div", { id: "enroll-area", "aria-live": "polite" });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const identity = form.elements.identity.value.trim();
    const files = [...form.elements.images.files];
    const rows = h("tbody");
    const table = h(
      "table",
      { id: "enroll-results" },
      h("thead", {}, h("tr", {}, h("th", {}, "file"), h("th", {}, "result"))),
      rows,
    );
    const summary = message("status", `Enrolling ${files.length} file(s)…`);
    area.replaceChildren(summary, table);
    const counts = { created: 0, already: 0, refused: 0 };
    for (const file of files) {
      const [status, text] = await enrollOne(form, file);
      counts[status] += 1;
      rows.append(h("tr", { class: status, dataset: { status, file: file.name } }, h("td", {}, file.name), h("td", {}, text)));
    }
    summary.replaceWith(
      h(
        "p",
        { class: "message status", role: "status", id: "enroll-summary" },
        `${counts.created} created, ${counts.already} already enrolled, ${counts.refused} refused for `,
        identityLink(identity),
        ".",
      ),
    );
  });
  view.append(h("h1", {}, "Enroll a person"), form, area);
}
