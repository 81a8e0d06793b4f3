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

  var fetcher = GraphiQL.createFetcher({ url: '/graphql' });

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
