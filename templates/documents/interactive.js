/* symprop's interactive report: show the chosen derivation, mark its chain-rule path.
   Our own script, inlined; it fetches nothing. The data block (#symprop-data) holds each
   choice's other spellings and the ids of the diagram elements on its path. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("symprop-data").textContent);
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };
  var sections = {};
  /* Each section's id lets a link jump to it without scripts; here the script scrolls, so
     the browser does not jump to a section before it is shown. */
  each(document.querySelectorAll("section.derivation"), function (s) {
    sections[s.getAttribute("data-name")] = s;
    s.removeAttribute("id");
  });
  var fromDiagram = false;
  var choices = Array.prototype.slice.call(document.querySelectorAll("svg g.choice"));
  /* a layer's ellipsis and heading: each opens the menu of what the diagram does not draw */
  var mores = Array.prototype.slice.call(document.querySelectorAll("svg g.more"));
  var stops = choices.concat(mores);  /* what the arrow keys move between */
  var listed = document.querySelectorAll("nav.choices a[data-name], .more-menu a[data-name]");
  var notice = document.getElementById("symprop-notice");
  document.documentElement.classList.add("js");

  /* "#w_%7B12%7D%5E%7B(L)%7D", "#\gamma_{1}^{(2)}" and "#w_12^(L)" name the same thing. */
  function normalise(fragment) {
    var text = fragment.replace(/^#/, "");
    try { text = decodeURIComponent(text); } catch (e) { /* keep it as it is */ }
    return text.replace(/[{}\\\s]/g, "");
  }

  function select(name) {
    Object.keys(sections).forEach(function (n) {
      if (n === name) { sections[n].removeAttribute("hidden"); }
      else { sections[n].setAttribute("hidden", ""); }
    });
    each(document.querySelectorAll(".on-path"), function (el) { el.classList.remove("on-path"); });
    (data.paths[name] || []).forEach(function (id) {
      var el = document.getElementById(id);
      if (el) { el.classList.add("on-path"); }
    });
    choices.forEach(function (el) {
      var on = el.getAttribute("data-name") === name;
      el.classList.toggle("selected", on);
      el.setAttribute("aria-pressed", on ? "true" : "false");
    });
    each(listed, function (a) {
      if (a.getAttribute("data-name") === name) { a.setAttribute("aria-current", "true"); }
      else { a.removeAttribute("aria-current"); }
    });
    document.body.setAttribute("data-selected", name);
  }

  function fromFragment(event) {
    var wanted = normalise(location.hash);
    var name = Object.prototype.hasOwnProperty.call(data.aliases, wanted) ? data.aliases[wanted] : null;
    if (wanted && name === null) {
      notice.textContent = "This report has no derivation named " + wanted +
        "; showing " + data.first + ". Choose one in the diagram or the list.";
      notice.hidden = false;
    } else {
      notice.hidden = true;
    }
    select(name === null ? data.first : name);
    if (event && !fromDiagram && name !== null) { sections[name].scrollIntoView(); }
    fromDiagram = false;
  }

  function choose(name) {
    var fragment = "#" + encodeURIComponent(name);
    if (location.hash === fragment) { select(name); return; }
    fromDiagram = true;
    location.hash = fragment;
  }

  function centre(el) {
    var box = el.getBoundingClientRect();
    return box.top + box.height / 2;
  }

  /* Opens the menu of ``el`` (an ellipsis or a heading) and closes the others; a second
     press closes it. Its first choice takes the focus; Escape returns it. */
  function toggle(el) {
    var menu = document.getElementById(el.getAttribute("data-menu"));
    var open = menu.hidden;
    each(document.querySelectorAll(".more-menu"), function (m) { m.hidden = true; });
    mores.forEach(function (g) { g.setAttribute("aria-expanded", "false"); });
    if (!open) { return; }
    mores.forEach(function (g) {
      if (g.getAttribute("data-menu") === menu.id) { g.setAttribute("aria-expanded", "true"); }
    });
    menu.hidden = false;
    menu.opener = el;
    var first = menu.querySelector("a[aria-current]") || menu.querySelector("a");
    if (first) { first.focus(); }
  }

  /* Arrow keys: up and down within a column, left and right to the nearest choice of the
     next column of nodes or arrows that has one. */
  function neighbour(from, key) {
    var group = Number(from.getAttribute("data-group"));
    var y = centre(from);
    if (key === "ArrowUp" || key === "ArrowDown") {
      var column = stops.filter(function (el) { return Number(el.getAttribute("data-group")) === group; });
      column.sort(function (a, b) { return centre(a) - centre(b); });
      var at = column.indexOf(from) + (key === "ArrowDown" ? 1 : -1);
      return column[Math.max(0, Math.min(column.length - 1, at))];
    }
    var step = key === "ArrowRight" ? 1 : -1;
    var groups = stops.map(function (el) { return Number(el.getAttribute("data-group")); });
    var ahead = groups.filter(function (g) { return (g - group) * step > 0; });
    if (!ahead.length) { return from; }
    var next = step > 0 ? Math.min.apply(null, ahead) : Math.max.apply(null, ahead);
    var best = from;
    var distance = Infinity;
    stops.forEach(function (el) {
      if (Number(el.getAttribute("data-group")) === next && Math.abs(centre(el) - y) < distance) {
        best = el;
        distance = Math.abs(centre(el) - y);
      }
    });
    return best;
  }

  choices.forEach(function (el) {
    el.addEventListener("click", function () { choose(el.getAttribute("data-name")); });
    el.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        choose(el.getAttribute("data-name"));
      } else if (/^Arrow/.test(event.key)) {
        event.preventDefault();
        neighbour(el, event.key).focus();
      }
    });
  });
  mores.forEach(function (el) {
    el.addEventListener("click", function () { toggle(el); });
    el.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        toggle(el);
      } else if (/^Arrow/.test(event.key)) {
        event.preventDefault();
        neighbour(el, event.key).focus();
      }
    });
  });
  each(document.querySelectorAll(".more-menu"), function (menu) {
    menu.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.opener) {
        menu.opener.focus();
        toggle(menu.opener);
      }
    });
  });
  window.addEventListener("hashchange", fromFragment);
  fromFragment();
}());
