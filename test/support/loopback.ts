/** Helpers for the tests' own loopback HTTP servers. */
import type http from 'node:http';
import type net from 'node:net';

/** The server's open connections, kept current: a test counts them or destroys them to close at once. */
export function trackSockets(server: http.Server): Set<net.Socket> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return sockets;
}
