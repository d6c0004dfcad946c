// Evaluation jobs: start one (a Market-1501 zip, or labelled queries against the live
// gallery), watch its progress, then read its metrics, CMC curve and ranked lists.

import { getJson, sendForm } from "./api.js";
import { checkbox, failureText, field, h, message, thumbnail } from "./dom.js";
import { cmcPlot } from "./plots.js";

const POLL_MS = 500;

function zipForm() {
  return h(
    "form",
    { id: "evaluate-zip-form", class: "panel" },
    h("h2", {}, "A dataset zip (Market-1501 layout), in isolation from the gallery"),
    field("Zip with query/ and bounding_box_test/", { id: "evaluate-zip", name: "dataset", type: "file", accept: ".zip,application/zip", required: true }),
    checkbox("k-reciprocal re-ranking", { id: "evaluate-zip-rerank", name: "rerank", value: "true" }),
    h("button", { type: "submit" }, "Start evaluation"),
  );
}

/** The identity a file name suggests: what comes before its first "_" (Market's naming). */
function guessIdentity(name) {
  return name.split("_")[0].replace(/\.[^.]*$/, "");
}

function labelledForm() {
  const labels = h("tbody", { id: "evaluate-labels" });
  const files = h("input", { type: "file", id: "evaluate-images", name: "images", multiple: true, required: true, accept: "image/jpeg,image/png,image/webp" });
  files.addEventListener("change", () => {
    labels.replaceChildren(
      ...[...files.files].map((file, index) =>
        h(
          "tr",
          {},
          h("td", {}, file.name),
          h("td", {}, h("input", { "aria-label": `identity of ${file.name}`, name: `identity-${index}`, value: guessIdentity(file.name), required: true })),
          h("td", {}, h("input", { "aria-label": `camera of ${file.name}`, name: `camera-${index}` })),
        ),
      ),
    );
  });
  return h(
    "form",
    { id: "evaluate-labelled-form", class: "panel" },
    h("h2", {}, "Labelled queries, scored against the live gallery"),
    h("div", { class: "field" }, h("label", { for: "evaluate-images" }, "Query crops"), files),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "file"), h("th", {}, "identity"), h("th", {}, "camera (optional)"))), labels),
    checkbox("k-reciprocal re-ranking", { id: "evaluate-labelled-rerank", name: "rerank", value: "true" }),
    h("button", { type: "submit" }, "Start evaluation"),
  );
}

function labelledRequest(form) {
  const files = [...form.elements.images.files];
  const data = new FormData();
  files.forEach((file) => data.append("images", file, file.name));
  const identities = files.map((_, index) => form.elements[`identity-${index}`].value.trim());
  const cameras = files.map((_, index) => form.elements[`camera-${index}`].value.trim() || null);
  data.append("identities", JSON.stringify(identities));
  if (cameras.some((camera) => camera !== null)) data.append("cameras", JSON.stringify(cameras));
  if (form.elements.rerank.checked) data.append("rerank", "true");
  return data;
}

function percent(value) {
  return `${(100 * value).toFixed(1)}%`;
}

function metricsTable(metrics) {
  const rows = [
    ["mAP", percent(metrics.mAP)],
    ["rank-1", percent(metrics.rank1)],
    ["rank-5", percent(metrics.rank5)],
    ["rank-10", percent(metrics.rank10)],
    ["mINP", percent(metrics.mINP)],
    ["queries (valid)", `${metrics.num_query} (${metrics.num_valid_query})`],
    ["gallery", String(metrics.num_gallery)],
  ];
  return h("table", { id: "evaluate-metrics" }, h("tbody", {}, ...rows.map(([name, value]) => h("tr", {}, h("th", {}, name), h("td", {}, value)))));
}

/** Query, then its top-10 gallery entries marked right or wrong, as the trainer draws them. */
function rankedLists(lists, queryFiles) {
  return h(
    "div",
    { id: "ranked-lists" },
    h("h3", {}, "Ranked lists (plain cosine ranking)"),
    ...lists.map((row) => {
      const file = queryFiles.get(row.file);
      const query = file
        ? h("img", { class: "thumb thumb-128 query", src: URL.createObjectURL(file), alt: `query ${row.file} (${row.identity})` })
        : h("span", { class: "query" }, row.file);
      return h(
        "div",
        { class: "ranked", dataset: { file: row.file } },
        query,
        ...row.ranked.map((hit) =>
          h(
            "figure",
            { class: hit.correct ? "right" : "wrong", dataset: { correct: hit.correct } },
            thumbnail({ id: hit.entry_id, identity: hit.identity }),
            h("figcaption", {}, `${hit.correct ? "✓" : "✗"} ${hit.score.toFixed(2)}`),
          ),
        ),
      );
    }),
  );
}

function showResult(area, job, queryFiles) {
  if (job.status === "failed") {
    area.append(message("error", `The job failed: ${job.error ? failureText(job.error) : "no reason given"}`));
    return;
  }
  const result = job.result;
  area.append(
    message("status", `Finished: ${job.kind}, model ${job.model_version}.`),
    metricsTable(result.metrics),
    cmcPlot(result.metrics.cmc),
  );
  if (result.ranked_lists?.length) area.append(rankedLists(result.ranked_lists, queryFiles));
}

async function follow(area, accepted, queryFiles) {
  const bar = h("progress", { id: "job-progress", max: 1, value: 0, "aria-label": "evaluation progress" });
  const state = h("span", { id: "job-status" }, accepted.status);
  area.replaceChildren(h("p", {}, `Job ${accepted.id}: `, state), bar);
  for (;;) {
    const job = await getJson(accepted.status_url);
    bar.value = job.progress;
    state.textContent = job.status;
    if (job.status === "succeeded" || job.status === "failed") {
      showResult(area, job, queryFiles);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

export async function render(view) {
  const area = h("section", { id: "evaluate-job", "aria-live": "polite" });
  const zip = zipForm();
  const labelled = labelledForm();
  function start(form, request, queryFiles) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const accepted = await sendForm("/evaluate", request(form));
        await follow(area, accepted, queryFiles(form));
      } catch (failure) {
        area.replaceChildren(message("error", failureText(failure)));
      }
    });
  }
  start(zip, (form) => new FormData(form), () => new Map());
  start(labelled, labelledRequest, (form) => new Map([...form.elements.images.files].map((file) => [file.name, file])));
  view.append(h("h1", {}, "Evaluate"), zip, labelled, area);
}
