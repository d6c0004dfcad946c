// Plots drawn as inline SVG, so no charting library (and no network) is needed.

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}, text = null) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== null) element.textContent = text;
  return element;
}

/** The CMC curve: the share of queries whose right identity is within the first k. */
export function cmcPlot(cmc, maxRank = 20) {
  const ranks = cmc.slice(0, maxRank);
  const [width, height, left, bottom, top, right] = [420, 240, 44, 32, 12, 12];
  const x = (k) => left + ((k - 1) / Math.max(ranks.length - 1, 1)) * (width - left - right);
  const y = (value) => top + (1 - value) * (height - top - bottom);
  const plot = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": `CMC curve: rank-1 ${(100 * ranks[0]).toFixed(1)}%`,
    "data-plot": "cmc",
    class: "plot",
  });
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    plot.append(svg("line", { x1: left, x2: width - right, y1: y(tick), y2: y(tick), class: "grid" }));
    plot.append(svg("text", { x: left - 6, y: y(tick) + 4, "text-anchor": "end" }, `${100 * tick}%`));
  }
  for (const k of [1, 5, 10, 15, 20].filter((k) => k <= ranks.length)) {
    plot.append(svg("text", { x: x(k), y: height - bottom + 16, "text-anchor": "middle" }, String(k)));
  }
  plot.append(svg("text", { x: (left + width) / 2, y: height - 2, "text-anchor": "middle" }, "rank"));
  plot.append(
    svg("polyline", { points: ranks.map((value, index) => `${x(index + 1)},${y(value)}`).join(" "), class: "curve" }),
  );
  return plot;
}
