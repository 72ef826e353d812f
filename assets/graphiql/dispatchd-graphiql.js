// dispatchd's GraphiQL: queries and mutations POSTed to the page's `data-endpoint`,
// subscriptions over the WebSocket at `data-subscription-endpoint` (graphql-transport-ws, on the
// page's own host, wss: under https:). The token, pasted once in the headers editor as
// {"Authorization": "Bearer ..."}, is kept in localStorage and sent with both: as an HTTP header,
// and in connection_init's payload, read from the editor each time a subscription opens its
// connection.
(function () {
  'use strict';
  var root = document.getElementById('graphiql');

  // The CSP allows inline <style> only with this page's nonce; GraphiQL's dialogs insert one
  // (react-remove-scroll), and take the nonce from this global.
  var nonce = document.querySelector('meta[name="csp-nonce"]');
  if (nonce) {
    window.__webpack_nonce__ = nonce.content;
  }

  var wsScheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  var toolkit = GraphiQL.createFetcher({
    url: new URL(root.dataset.endpoint, location.href).href,
    // GraphiQL's bundle includes the graphql-ws client: one client per subscription, its
    // connection_init payload being the editor's headers at that moment.
    subscriptionUrl: wsScheme + '//' + location.host + root.dataset.subscriptionEndpoint,
  });

  // The server reads the token from `Authorization` (or `authorization`) in connection_init's
  // payload: whatever case was typed in the editor, send it under that name.
  function fetcher(params, opts) {
    var headers = {};
    var typed = (opts && opts.headers) || {};
    Object.keys(typed).forEach(function (name) {
      headers[name.toLowerCase() === 'authorization' ? 'Authorization' : name] = typed[name];
    });
    return toolkit(params, Object.assign({}, opts, { headers: headers }));
  }

  // GraphiQL 3 forgets the headers between two loads of the page (its `headers` key is emptied
  // once a page has loaded, so the next load opens a tab without them), and a page opened with
  // `?query=` starts its tab without headers: take them from the tab that was active, so that a
  // token pasted once stays. Not when persisting headers was turned off in GraphiQL's settings.
  function persistedHeaders() {
    try {
      if (localStorage.getItem('graphiql:shouldPersistHeaders') === 'false') {
        return null;
      }
      var state = JSON.parse(localStorage.getItem('graphiql:tabState') || 'null');
      var tab = state && state.tabs && state.tabs[state.activeTabIndex];
      return localStorage.getItem('graphiql:headers') || (tab && tab.headers) || null;
    } catch (e) {
      return null;
    }
  }

  var props = {
    fetcher: fetcher,
    shouldPersistHeaders: true,
    defaultEditorToolsVisibility: 'headers',
  };
  var headers = persistedHeaders();
  if (headers) {
    props.headers = headers;
  }
  // `?query=` opens that query (links to a query; the browser test).
  var query = new URLSearchParams(location.search).get('query');
  if (query !== null) {
    props.query = query;
  }
  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, props));
})();
