// The SQL project's documentation site (retrain docs): hovering a box of the graph lights up everything it reads
// and everything that reads it; a model's page marks its own box. No library, nothing fetched.
(function () {
  "use strict";
  var svg = document.querySelector("svg.graph");
  if (!svg) { return; }
  var edges = Array.prototype.slice.call(svg.querySelectorAll(".edge"));
  var nodes = {};
  Array.prototype.forEach.call(svg.querySelectorAll(".node"), function (node) {
    nodes[node.getAttribute("data-node")] = node;
  });

  function walk(start, forward) {
    var seen = {}, queue = [start], lit = [];
    while (queue.length) {
      var id = queue.shift();
      if (seen[id]) { continue; }
      seen[id] = true;
      edges.forEach(function (edge) {
        var from = edge.getAttribute("data-from"), to = edge.getAttribute("data-to");
        if ((forward ? from : to) === id) { lit.push(edge); queue.push(forward ? to : from); }
      });
    }
    return { nodes: Object.keys(seen), edges: lit };
  }

  function light(id, on) {
    svg.classList.toggle("dim", on);
    [walk(id, true), walk(id, false)].forEach(function (found) {
      found.edges.forEach(function (edge) { edge.classList.toggle("lit", on); });
      found.nodes.forEach(function (name) { if (nodes[name]) { nodes[name].classList.toggle("lit", on); } });
    });
  }

  Object.keys(nodes).forEach(function (id) {
    nodes[id].addEventListener("mouseenter", function () { light(id, true); });
    nodes[id].addEventListener("mouseleave", function () { light(id, false); });
  });
  var title = document.getElementById("model-name");
  if (title && nodes["model:" + title.textContent]) {
    nodes["model:" + title.textContent].classList.add("current");
  }
}());
