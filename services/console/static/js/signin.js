// Sign-in: the console authenticates the way the API does, with a bearer
// token from the tenant's authority. On the embedded default the gateway
// also offers a token from the Graph emulator.

import { ROLES, emulatorToken } from "./auth.js";
import { h, replace } from "./dom.js";

export function renderSignIn(context, { onToken }) {
  const { main, config } = context;
  const error = h("p", { id: "token-error", class: "field-error", hidden: true });
  const input = h("textarea", {
    id: "token-input",
    name: "token",
    rows: 4,
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "token-help token-error",
  });

  function fail(message) {
    error.textContent = `Not signed in: ${message}.`;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }

  function accept(text) {
    try {
      onToken(text);
    } catch (problem) {
      fail(problem.message);
    }
  }

  const form = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "paste-heading",
      onsubmit(event) {
        event.preventDefault();
        accept(input.value);
      },
    },
    h("h2", { id: "paste-heading" }, "Paste a token"),
    h("label", { for: "token-input" }, "Bearer token"),
    h(
      "p",
      { id: "token-help", class: "hint" },
      "An access token (a JWT) issued by your tenant's authority for the profile-sync application, " +
        "for example the LOB app's client-credentials token. It is kept in this browser tab only " +
        "and sent only to this gateway.",
    ),
    input,
    error,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );

  const sections = [form];
  if (config.emulatorTokenUrl) {
    const boxes = ROLES.map(({ role, use }) => {
      const id = `role-${role.replace(/\W/g, "-")}`;
      return h(
        "li",
        {},
        h("input", { type: "checkbox", id, value: role, checked: true }),
        h("label", { for: id }, h("code", {}, role), ` — ${use}`),
      );
    });
    const status = h("p", { class: "hint", role: "status" });
    const button = h(
      "button",
      {
        type: "button",
        class: "primary",
        id: "emulator-token",
        async onclick() {
          const roles = boxes.map((box) => box.querySelector("input")).filter((box) => box.checked).map((box) => box.value);
          button.disabled = true;
          status.textContent = "Asking the emulator for a token…";
          try {
            accept(await emulatorToken(config.emulatorTokenUrl, roles));
          } catch (problem) {
            status.textContent = "";
            fail(problem.message);
          } finally {
            button.disabled = false;
          }
        },
      },
      "Get a token from the emulator",
    );
    sections.push(
      h(
        "section",
        { class: "card", "aria-labelledby": "emulator-heading" },
        h("h2", { id: "emulator-heading" }, "Embedded default"),
        h(
          "p",
          {},
          "This gateway runs on the embedded default: its Graph emulator plays the tenant's " +
            "authority and can issue an application token with the roles you choose.",
        ),
        h("fieldset", {}, h("legend", {}, "Roles of the token"), h("ul", { class: "plain" }, boxes)),
        button,
        status,
      ),
    );
  }

  replace(
    main,
    h("h1", {}, "Sign in"),
    h(
      "p",
      { class: "lead" },
      "The console calls this gateway's REST API with your token, exactly as an application " +
        "would. Reading needs the app role ",
      h("code", {}, "Profiles.Read"),
      "; approving held deletions needs ",
      h("code", {}, "Profiles.Sync"),
      "; replaying dead letters needs ",
      h("code", {}, "Subscribers.Manage"),
      " or ",
      h("code", {}, "Profiles.Sync"),
      ". When your token lacks a role, the console says which.",
    ),
    h("div", { class: "signin-grid" }, sections),
  );
  return null;
}
