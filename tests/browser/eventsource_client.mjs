// Node's `eventsource` package (a WHATWG EventSource) subscribed to one event stream, for
// tests/sse_clients.rs. Usage: node eventsource_client.mjs URL WANT TIMEOUT_MS
// Prints {"client","open"} per connection opened, then {"results": {"eventsource": {...}}}.
import { EventSource } from "eventsource";

const [url, want, timeoutMs] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const messages = [];
let opens = 0;
const source = new EventSource(url);
const finish = () => {
  source.close();
  console.log(JSON.stringify({ results: { eventsource: { messages, opens } } }));
  process.exit(0);
};
source.addEventListener("open", () => {
  opens += 1;
  console.log(JSON.stringify({ client: "eventsource", open: opens }));
});
source.addEventListener("message", (event) => {
  messages.push(event.data);
  if (messages.length >= want) finish();
});
setTimeout(finish, timeoutMs);
