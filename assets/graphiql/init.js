// GraphiQL bootstrap for jobgraph. Kept out of index.html so the page works
// under a strict Content-Security-Policy (script-src 'self').
// Globals React, ReactDOM and GraphiQL come from the vendored UMD bundles.
(function () {
  'use strict';

  var defaultQuery = [
    '# jobgraph GraphiQL playground',
    '#',
    '# To log in, open the "Headers" tab below',
    '# and paste:',
    '#',
    '#   {"Authorization": "Bearer <token>"}',
    '#',
    '# <token> is printed by `jobgraph seed` or',
    '# `jobgraph token --email <email>`.',
    '# Headers are saved in this browser\'s',
    '# localStorage, so this is needed only once.',
    '#',
    '# Run a query with Ctrl+Enter (Cmd+Enter on',
    '# macOS); the book icon opens the schema docs.',
    '',
    '{',
    '  __typename',
    '}',
    ''
  ].join('\n');

  var httpFetcher = GraphiQL.createFetcher({ url: '/graphql' });

  // Subscriptions run over Server-Sent Events (POST with
  // `Accept: text/event-stream`): same origin, so the page's
  // Content-Security-Policy (connect-src 'self') allows it.
  // From the text itself: GraphiQL refreshes `documentAST` only 100 ms
  // after an edit, so a quick Run would see the previous document.
  function operationOf(params) {
    var text = String(params.query || '').replace(/#[^\n]*/g, '');
    var name = params.operationName;
    if (name) {
      var named = new RegExp('\\b(query|mutation|subscription)\\s+' + name + '\\b').exec(text);
      if (named) return named[1];
    }
    var first = /^\s*(query|mutation|subscription)\b/m.exec(text);
    return first ? first[1] : 'query';
  }

  function events(params, headers) {
    var controller = new AbortController();
    var queue = [];
    var waiting = null;
    var finished = false;
    function push(item) {
      if (waiting) { var w = waiting; waiting = null; w(item); } else { queue.push(item); }
    }
    var h = Object.assign({}, headers || {}, {
      'content-type': 'application/json',
      accept: 'text/event-stream'
    });
    fetch('/graphql', { method: 'POST', headers: h, body: JSON.stringify(params), signal: controller.signal })
      .then(function (res) {
        var type = res.headers.get('content-type') || '';
        if (type.indexOf('text/event-stream') !== 0) {
          return res.json().then(function (body) { push({ value: body }); push({ done: true }); });
        }
        var reader = res.body.getReader();
        var decoder = new TextDecoder();
        var buffer = '';
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) { push({ done: true }); return; }
            buffer += decoder.decode(chunk.value, { stream: true });
            var at;
            while ((at = buffer.indexOf('\n\n')) >= 0) {
              var block = buffer.slice(0, at);
              buffer = buffer.slice(at + 2);
              var event = '', data = '';
              block.split('\n').forEach(function (line) {
                if (line.indexOf('event:') === 0) event = line.slice(6).trim();
                else if (line.indexOf('data:') === 0) data += line.slice(5).trim();
              });
              if (event === 'next') push({ value: JSON.parse(data) });
              else if (event === 'complete') { push({ done: true }); return; }
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(function (error) {
        if (!finished) push({ value: { errors: [{ message: String(error) }] } });
        push({ done: true });
      });
    var iterator = {
      next: function () {
        if (finished) return Promise.resolve({ done: true, value: undefined });
        var item = queue.length ? Promise.resolve(queue.shift()) : new Promise(function (r) { waiting = r; });
        return item.then(function (it) {
          if (it.done) { finished = true; return { done: true, value: undefined }; }
          return { done: false, value: it.value };
        });
      },
      return: function () {
        finished = true;
        controller.abort();
        return Promise.resolve({ done: true, value: undefined });
      }
    };
    iterator[Symbol.asyncIterator] = function () { return iterator; };
    return iterator;
  }

  function fetcher(params, opts) {
    if (operationOf(params) === 'subscription') {
      return events(params, opts && opts.headers);
    }
    // Without the (possibly outdated) parse: GraphiQL's own fetcher would
    // otherwise take a query run right after a subscription for one.
    return httpFetcher(params, Object.assign({}, opts, { documentAST: undefined }));
  }

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultHeaders: '{"Authorization": "Bearer "}',
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      defaultEditorToolsVisibility: 'headers'
    })
  );
})();
