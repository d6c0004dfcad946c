// The console's shell: who the caller is, which pages their role may use, and a hash router.
// Pages are modules exporting render(view, context); each builds its own DOM.

import { ApiFailure, forgetKey, getJson, onUnauthenticated, storeKey, storedKey } from "./api.js";
import { failureText, h, message } from "./dom.js";
import * as enroll from "./enroll.js";
import * as evaluate from "./evaluate.js";
import * as gallery from "./gallery.js";
import * as identity from "./identity.js";
import * as modelPage from "./model.js";
import * as search from "./search.js";

const ROLES = ["read", "write", "admin"];

// route name -> [page module, role it needs, nav label (null: not in the nav)]
const PAGES = {
  search: [search, "read", "Search"],
  enroll: [enroll, "write", "Enroll"],
  gallery: [gallery, "read", "Gallery"],
  identity: [identity, "read", null],
  evaluate: [evaluate, "admin", "Evaluate"],
  model: [modelPage, "read", "Model"],
};

const context = {
  principal: null, // {name, role, auth_enabled} from GET /whoami
  model: null, // GET /model
  can(role) {
    return this.principal !== null && ROLES.indexOf(this.principal.role) >= ROLES.indexOf(role);
  },
  go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
};

function parseHash() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  return { name: name || "search", argument: rest.length ? decodeURIComponent(rest.join("/")) : null };
}

function drawNav() {
  const nav = document.getElementById("nav");
  const { name: current } = parseHash();
  nav.replaceChildren(
    ...Object.entries(PAGES)
      .filter(([, [, role, label]]) => label && context.can(role))
      .map(([name, [, , label]]) =>
        h("a", { href: `#/${name}`, "aria-current": name === current ? "page" : null }, label),
      ),
  );
  const who = document.getElementById("who");
  who.replaceChildren();
  if (context.principal?.auth_enabled) {
    who.append(
      h("span", {}, `${context.principal.name} (${context.principal.role})`),
      h("button", { type: "button", id: "forget-key", onclick: signOut }, "Forget key"),
    );
  } else if (context.principal) {
    who.append(h("span", { class: "muted" }, "no API keys configured: local access"));
  }
}

function drawBanner() {
  const banner = document.getElementById("banner");
  banner.replaceChildren();
  if (context.model && !context.model.trained) {
    banner.append(
      message(
        "warning",
        "This service runs an UNTRAINED network: its rankings are meaningless. " +
          "Try `make demo` for a trained synthetic model, or train one with " +
          "`python -m training.run` and point REID_MODEL_PATH at its best/ directory.",
      ),
    );
  }
}

async function route() {
  const view = document.getElementById("view");
  if (!context.principal) return;
  const { name, argument } = parseHash();
  const [page, role] = PAGES[name] ?? PAGES.search;
  drawNav();
  view.replaceChildren();
  if (!context.can(role)) {
    view.append(message("error", `This page needs the '${role}' role; your key has '${context.principal.role}'.`));
    return;
  }
  try {
    await page.render(view, context, argument);
  } catch (failure) {
    view.append(message("error", failure instanceof ApiFailure ? failureText(failure) : String(failure)));
  }
  view.focus({ preventScroll: true });
}

function askForKey(reason) {
  const dialog = document.getElementById("key-dialog");
  document.getElementById("key-reason").textContent = reason;
  if (!dialog.open) dialog.showModal();
  document.getElementById("api-key").focus();
}

function signOut() {
  forgetKey();
  context.principal = null;
  drawNav();
  document.getElementById("view").replaceChildren();
  askForKey("Enter an API key to use the service.");
}

async function start() {
  try {
    context.principal = await getJson("/whoami");
    context.model = await getJson("/model");
  } catch (failure) {
    if (failure instanceof ApiFailure && failure.status === 401) {
      askForKey(storedKey() ? failureText(failure) : "This service needs an API key.");
    } else {
      document.getElementById("view").replaceChildren(message("error", failureText(failure)));
    }
    return;
  }
  document.getElementById("key-dialog").close();
  drawBanner();
  route();
}

document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("api-key");
  storeKey(input.value.trim());
  input.value = "";
  start();
});
onUnauthenticated((failure) => {
  if (context.principal) {
    context.principal = null;
    askForKey(failureText(failure));
  }
});
window.addEventListener("hashchange", route);
start();
