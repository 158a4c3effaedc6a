// Liaison console: live channel traffic over server-sent events, and policy
// colours on markings. No external code; the page works without it, minus
// live updates.
"use strict";

function applyColour(el) {
  const c = el.dataset.colour;
  if (c && /^#[0-9a-fA-F]{3,8}$|^[a-zA-Z]+$/.test(c)) {
    el.style.background = c;
    // pick readable text on the policy's colour
    const probe = document.createElement("span");
    probe.style.color = c;
    document.body.appendChild(probe);
    const m = getComputedStyle(probe).color.match(/\d+/g) || [0, 0, 0];
    probe.remove();
    const lum = (0.299 * m[0] + 0.587 * m[1] + 0.114 * m[2]) / 255;
    el.style.color = lum > 0.55 ? "#000" : "#fff";
  }
}

function text(tag, cls, value) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  el.textContent = value;
  return el;
}

function render(m) {
  const li = document.createElement("li");
  li.className = "msg new";
  li.dataset.id = m.id;
  const top = text("div", "marking", m.marking);
  if (m.colour) top.dataset.colour = m.colour;
  li.appendChild(top);
  li.appendChild(text("span", "badge prec-" + m.precedence.toLowerCase(), m.precedence));
  li.appendChild(text("span", "muted", " " + m.created + " from " + m.origin + (m.originator ? " (" + m.originator + ")" : "")));
  li.appendChild(text("p", "body", m.body));
  if (m.recipients && m.recipients.length) {
    const ul = document.createElement("ul");
    ul.className = "recipients";
    for (const r of m.recipients) {
      const item = document.createElement("li");
      item.appendChild(text("span", "status status-" + r.state, r.party + ": " + r.state));
      if (r.reason) item.appendChild(text("span", "muted", " " + r.reason));
      ul.appendChild(item);
    }
    li.appendChild(ul);
  }
  const bottom = text("div", "marking bottom", m.marking);
  if (m.colour) bottom.dataset.colour = m.colour;
  li.appendChild(bottom);
  li.querySelectorAll(".marking").forEach(applyColour);
  return li;
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".marking[data-colour]").forEach(applyColour);
  const list = document.getElementById("traffic");
  if (!list || !window.EventSource) return;
  const state = document.getElementById("live-state");
  const url = "/console/channels/" + encodeURIComponent(list.dataset.channel) + "/events?after=" + list.dataset.after;
  const es = new EventSource(url);
  es.addEventListener("open", () => { if (state) state.textContent = "live"; });
  es.addEventListener("error", () => { if (state) state.textContent = "reconnecting…"; });
  es.addEventListener("message", (ev) => {
    const m = JSON.parse(ev.data);
    if (list.querySelector('[data-id="' + m.id + '"]')) return;
    list.prepend(render(m));
    const announce = document.getElementById("announce");
    if (announce) announce.textContent = "New " + m.precedence.toLowerCase() + " message from " + m.origin + ", " + m.marking + ".";
    const empty = document.getElementById("no-traffic");
    if (empty) empty.remove();
  });
});
