// searchidx: small enhancements over a page that works without JavaScript.
// - facet checkboxes and the sort/size menus submit the form as soon as they change;
// - empty fields are left out of the URL, so shared links stay short;
// - the search box suggests completions from /api/suggest (an ARIA 1.2 combobox);
// - on a phone, the filters start folded away (unless the reader left them open).
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  var form = document.getElementById("search");
  if (!form) {
    return;
  }

  function submit() {
    if (form.requestSubmit) {
      form.requestSubmit();
    } else {
      form.submit();
    }
  }

  // The page shows what its URL says. Coming back from the back/forward cache, the controls
  // hold what the reader changed before leaving (a new sort, say): put them back.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      form.reset();
      form.querySelectorAll("input[data-added]").forEach(function (input) {
        input.remove();
      });
    }
  });

  // Keep URLs to what the reader chose: drop fields left empty.
  form.addEventListener("formdata", function (event) {
    var empty = [];
    event.formData.forEach(function (value, key) {
      if (value === "" && empty.indexOf(key) < 0) {
        empty.push(key);
      }
    });
    empty.forEach(function (key) {
      var kept = event.formData.getAll(key).filter(function (value) {
        return value !== "";
      });
      event.formData.delete(key);
      kept.forEach(function (value) {
        event.formData.append(key, value);
      });
    });
  });

  // Facet checkboxes and menus act at once; the facet links are then redundant for the
  // keyboard (one tab stop per value is enough), though still there for the mouse.
  Array.prototype.forEach.call(form.elements, function (element) {
    var autosubmit =
      (element.type === "checkbox" && element.closest(".facet")) ||
      element.hasAttribute("data-autosubmit");
    if (autosubmit) {
      element.addEventListener("change", submit);
    }
  });
  document.querySelectorAll(".facet-link").forEach(function (link) {
    link.setAttribute("tabindex", "-1");
  });

  // The filters on a phone: folded away unless the reader opened them (remembered per tab).
  var filters = document.querySelector("[data-filters]");
  var narrow = window.matchMedia("(max-width: 48rem)");
  if (filters) {
    var key = "searchidx.filters-open";
    var applyWidth = function () {
      if (!narrow.matches) {
        filters.open = true;
      } else {
        filters.open = sessionStorage.getItem(key) === "1";
      }
    };
    applyWidth();
    filters.addEventListener("toggle", function () {
      if (narrow.matches) {
        sessionStorage.setItem(key, filters.open ? "1" : "0");
      }
    });
    narrow.addEventListener("change", applyWidth);
  }

  setupAutocomplete(document.getElementById("q"));

  function setupAutocomplete(input) {
    var list = document.getElementById("q-suggestions");
    if (!input || !list || !window.fetch) {
      return;
    }
    var endpoint = input.getAttribute("data-suggest-url");
    var items = [];
    var active = -1;
    var timer = null;
    var latest = 0;

    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", list.id);

    function lastWord(text) {
      var match = /(\S+)$/.exec(text);
      return match ? match[1] : "";
    }

    function close() {
      list.hidden = true;
      list.innerHTML = "";
      items = [];
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      active = index;
      Array.prototype.forEach.call(list.children, function (option, position) {
        option.setAttribute("aria-selected", position === index ? "true" : "false");
      });
      if (index >= 0) {
        input.setAttribute("aria-activedescendant", list.children[index].id);
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function render(suggestions) {
      close();
      items = suggestions;
      if (!items.length) {
        return;
      }
      items.forEach(function (item, index) {
        var option = document.createElement("li");
        option.id = "q-suggestion-" + index;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        var text = document.createElement("span");
        text.textContent = item.text;
        var kind = document.createElement("span");
        kind.className = "kind";
        kind.textContent = item.kind === "word" ? "word" : item.kind + " · " + item.count;
        option.appendChild(text);
        option.appendChild(kind);
        // mousedown, not click: keep the focus in the input.
        option.addEventListener("mousedown", function (event) {
          event.preventDefault();
          choose(index);
        });
        list.appendChild(option);
      });
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }

    // A word completes the word being typed; a topic or provider becomes a filter.
    function choose(index) {
      var item = items[index];
      var typed = input.value;
      var before = typed.slice(0, typed.length - lastWord(typed).length);
      if (item.kind === "topic" || item.kind === "provider") {
        input.value = before.trim();
        var hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.setAttribute("data-added", "");
        hidden.name = item.kind;
        hidden.value = item.text;
        form.appendChild(hidden);
      } else {
        input.value = before + item.text;
      }
      close();
      submit();
    }

    function load() {
      var text = input.value;
      if (!lastWord(text)) {
        close();
        return;
      }
      var request = ++latest;
      fetch(endpoint + "?limit=8&q=" + encodeURIComponent(text), {
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          return response.ok ? response.json() : { suggestions: [] };
        })
        .then(function (data) {
          if (request === latest && document.activeElement === input) {
            render(data.suggestions || []);
          }
        })
        .catch(close);
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(load, 120);
    });
    input.addEventListener("keydown", function (event) {
      if (list.hidden) {
        if (event.key === "ArrowDown" && input.value) {
          load();
          event.preventDefault();
        }
        return;
      }
      if (event.key === "ArrowDown") {
        highlight((active + 1) % items.length);
        event.preventDefault();
      } else if (event.key === "ArrowUp") {
        highlight(active <= 0 ? items.length - 1 : active - 1);
        event.preventDefault();
      } else if (event.key === "Enter" && active >= 0) {
        event.preventDefault();
        choose(active);
      } else if (event.key === "Escape") {
        close();
        event.preventDefault();
      } else if (event.key === "Tab") {
        close();
      }
    });
    input.addEventListener("blur", function () {
      setTimeout(close, 100);
    });
  }
})();
