// Search: one crop in, the ranked identities out, with the open-set decision and the
// spatial attention (A_ed) of the query and of the best match drawn over each crop.

import { ApiFailure, getBlob, sendForm } from "./api.js";
import { checkbox, failureText, field, filledForm, h, identityLink, message, thumbnail } from "./dom.js";

function dropZone(input) {
  const zone = h(
    "label",
    { class: "drop", for: "search-image" },
    "Drop a crop here, or choose a file",
    input,
  );
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    input.files = event.dataTransfer.files;
  });
  return zone;
}

function searchForm() {
  const image = h("input", {
    type: "file",
    id: "search-image",
    name: "image",
    accept: "image/jpeg,image/png,image/webp",
    required: true,
  });
  const rate = h(
    "select",
    { id: "search-fpir", name: "max_false_positive_rate" },
    h("option", { value: "" }, "service default"),
    h("option", { value: "0.1" }, "10%"),
    h("option", { value: "0.01" }, "1%"),
    h("option", { value: "0.001" }, "0.1%"),
  );
  return h(
    "form",
    { id: "search-form", class: "panel" },
    dropZone(image),
    h(
      "div",
      { class: "row" },
      field("Identities to show", { id: "search-top-k", name: "top_k", type: "number", min: 1, max: 100, value: 10 }),
      field("Query camera", { id: "search-camera", name: "camera", maxlength: 64 }),
      checkbox("Skip entries from the query's camera", { id: "search-exclude", name: "exclude_same_camera", value: "true" }),
    ),
    h(
      "div",
      { class: "row" },
      field("Captured after (UTC)", { id: "search-after", name: "captured_after", type: "datetime-local" }),
      field("Captured before (UTC)", { id: "search-before", name: "captured_before", type: "datetime-local" }),
      h("div", { class: "field" }, h("label", { for: "search-fpir" }, "Max false-match rate"), rate),
    ),
    h("button", { type: "submit" }, "Search"),
  );
}

function decisionPanel(decision) {
  const text = {
    match: `Match: ${decision.identity}`,
    unknown: "Unknown: nobody enrolled scores above the threshold",
    uncalibrated: "Uncalibrated: no threshold is in force, so the service cannot say match or unknown",
  }[decision.status];
  const details = [];
  if (decision.score !== null) details.push(`best score ${decision.score.toFixed(3)}`);
  if (decision.threshold !== null) details.push(`threshold ${decision.threshold.toFixed(3)}`);
  if (decision.false_positive_rate !== null) {
    details.push(`promised false-match rate ${(100 * decision.false_positive_rate).toPrecision(2)}%`);
  }
  if (decision.calibration) details.push(`calibration: ${decision.calibration}`);
  return h(
    "section",
    { id: "decision", class: `decision ${decision.status}`, dataset: { status: decision.status } },
    h("h2", {}, text),
    h("p", {}, details.join(" · ")),
  );
}

function resultItem(result) {
  return h(
    "li",
    { class: "result", dataset: { identity: result.identity, score: result.score } },
    thumbnail({ id: result.entry_id, identity: result.identity, camera: result.camera }),
    h(
      "div",
      {},
      h("strong", {}, `#${result.rank} `, identityLink(result.identity)),
      h("div", {}, `score ${result.score.toFixed(3)}`),
      h("div", { class: "muted" }, result.camera ? `camera ${result.camera}` : "no camera"),
      h("div", { class: "muted" }, `${result.matches} matching entries seen`),
    ),
  );
}

/** POST /explain for a crop; the overlay <img>, or a note when the model has no attention. */
async function overlay(blob, which, alt) {
  const form = new FormData();
  form.append("image", blob, "crop");
  try {
    const explained = await sendForm("/explain", form);
    return h("img", { class: "overlay", src: explained.overlay_png, alt, dataset: { overlay: which } });
  } catch (failure) {
    if (failure instanceof ApiFailure) return message("note", failureText(failure));
    throw failure;
  }
}

function figure(caption, ...content) {
  return h("figure", {}, ...content, h("figcaption", {}, caption));
}

async function showResults(area, form) {
  const file = form.elements.image.files[0];
  area.replaceChildren(message("status", "Searching…"));
  const [answer, queryOverlay] = await Promise.all([
    sendForm("/query", filledForm(form)),
    overlay(file, "query", "attention over the query crop"),
  ]);
  const preview = URL.createObjectURL(file);
  const figures = h(
    "div",
    { class: "figures" },
    figure("query", h("img", { class: "crop", src: preview, alt: "the query crop" })),
    figure("query attention", queryOverlay),
  );
  const list = h("ol", { id: "results", class: "results" }, ...answer.results.map(resultItem));
  area.replaceChildren(
    decisionPanel(answer.decision),
    figures,
    h("h2", {}, `Ranked identities (${answer.gallery_size} entries, ${answer.timings.total_ms} ms)`),
    answer.results.length ? list : message("note", "No identity passed the filters."),
  );
  const best = answer.results[0];
  if (best) {
    const crop = await getBlob(`/gallery/${best.entry_id}/image`);
    figures.append(
      figure(`best match: ${best.identity}`, await overlay(crop, "match", `attention over ${best.identity}'s best crop`)),
    );
  }
}

export async function render(view) {
  const form = searchForm();
  const area = h("div", { id: "search-results", "aria-live": "polite" });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await showResults(area, form);
    } catch (failure) {
      area.replaceChildren(message("error", failureText(failure)));
    }
  });
  view.append(h("h1", {}, "Who is this?"), form, area);
}
