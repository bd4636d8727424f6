// Node.js's own http server as a probe target: no npm dependencies.
// Usage: node node_server.js PORT [KEEP_ALIVE_TIMEOUT_MS]
'use strict';
const http = require('http');

const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  req.resume(); // read and discard any request body
  req.on('end', () => {
    if (req.url === '/204') {
      res.writeHead(204);
      res.end();
    } else if (req.url.startsWith('/__onehop_probe_missing')) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
    } else {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('hello from node\n');
    }
  });
});
server.keepAliveTimeout = Number(process.argv[3] || 1000);
server.listen(port, '127.0.0.1', () => console.log('ready'));
process.on('SIGTERM', () => server.close(() => process.exit(0)) || setTimeout(() => process.exit(0), 200));
