// node_server.js -- baseline: Node's net module echo (or sink) server.
//   node node_server.js PORT [echo|sink]
'use strict';
const net = require('net');

const port = Number(process.argv[2]);
const sink = process.argv[3] === 'sink';

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.setNoDelay(true);
  if (sink) {
    socket.on('data', () => {});
  } else {
    socket.on('data', (chunk) => socket.write(chunk));
  }
  socket.on('error', () => socket.destroy());
});
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => {
  process.stdout.write(`ready ${port}\n`);
});
