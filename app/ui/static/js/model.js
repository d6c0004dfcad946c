// Model: the card of the served network, the calibration in force, and /ready's checks.

import { getJson } from "./api.js";
import { h, message } from "./dom.js";

function facts(pairs) {
  return h("dl", { class: "facts" }, ...pairs.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

function json(value) {
  return h("pre", {}, JSON.stringify(value, null, 2));
}

async function readiness() {
  // /ready needs no key and answers 503 with the same body when a check fails: show both.
  return (await fetch("/ready")).json();
}

/** "1% → 0.712"; a threshold above 1 is one no cosine score can reach: never a match. */
function threshold(point) {
  const rate = `${(100 * point.false_positive_rate).toPrecision(2)}%`;
  const note = point.threshold > 1 ? " (no score reaches it: never a match)" : "";
  return `${rate} → ${point.threshold.toFixed(3)}${note}`;
}

export async function render(view, context) {
  const card = context.model;
  const [ready, calibration] = await Promise.all([readiness(), getJson("/calibration")]);
  const config = card.config;
  view.append(
    h("h1", {}, "Model"),
    ...(card.trained ? [] : [message("warning", card.warning)]),
    facts([
      ["version", card.version],
      ["trained", card.trained ? "yes" : "NO"],
      ["architecture", `${config.arch}, attention ${config.attention}`],
      ["embedding", `${card.embedding_dim}-d`],
      ["input", `${card.input_size.at(-2)}×${card.input_size.at(-1)} (height×width)`],
      ["device", `${card.device}${card.bf16 ? ", bf16" : ""}`],
      ["checkpoint", card.checkpoint ?? "none"],
    ]),
    h("h2", {}, "Open-set calibration"),
    facts([
      ["in force", calibration.source ?? "none: queries answer uncalibrated"],
      ["enrolled identities", String(calibration.gallery_identities)],
      [
        "thresholds",
        calibration.thresholds.map(threshold).join(", ") || "—",
      ],
    ]),
    h("h2", {}, `Service: ${ready.status}`),
    h("div", { id: "ready-checks" }, json(ready.checks)),
    h("h2", {}, "Training metrics"),
    json(card.metrics),
  );
}
