// The guest's hand on its own QEMU (scenario 18 unplugs a USB device "from the outside"): follows the
// serial log while the guest runs and sends each `HOSTDEV-KTEST-OUTER {QMP command}` line's command to
// the outer QEMU's QMP socket, printing the reply. Runs on the host beside QEMU; ends when killed.
//   node outer-monitor.mjs SERIAL_LOG QMP_SOCKET
import fs from 'node:fs';
import net from 'node:net';

const [serial, socket] = process.argv.slice(2);
const MARK = 'HOSTDEV-KTEST-OUTER ';

function send(command) {
  return new Promise((resolve) => {
    const conn = net.connect(socket);
    const timer = setTimeout(() => {
      conn.destroy();
      resolve({ error: 'no answer within 10 s' });
    }, 10_000);
    let buffer = '';
    let sent = 0;
    conn.setEncoding('utf8');
    conn.on('data', (chunk) => {
      buffer += chunk;
      let i;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
        if (msg.event) continue;
        if (msg.QMP) conn.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
        else if (sent++ === 0) conn.write(`${JSON.stringify(command)}\n`);
        else {
          clearTimeout(timer);
          conn.end();
          resolve(msg);
        }
      }
    });
    conn.on('error', (error) => {
      clearTimeout(timer);
      resolve({ error: error.message });
    });
  });
}

let offset = 0;
let partial = '';
for (;;) {
  let chunk = '';
  try {
    const fd = fs.openSync(serial, 'r');
    const size = fs.fstatSync(fd).size;
    if (size < offset) offset = 0; // a new boot's log
    const buf = Buffer.alloc(size - offset);
    fs.readSync(fd, buf, 0, buf.length, offset);
    fs.closeSync(fd);
    offset = size;
    chunk = buf.toString('utf8');
  } catch {
    /* no log yet */
  }
  partial += chunk;
  const lines = partial.split('\n');
  partial = lines.pop() ?? '';
  for (const raw of lines) {
    const at = raw.indexOf(MARK);
    if (at < 0) continue;
    const command = JSON.parse(raw.slice(at + MARK.length).replace(/\r$/, ''));
    const reply = await send(command);
    process.stdout.write(`kernel rig: outer QEMU ${JSON.stringify(command)} -> ${JSON.stringify(reply)}\n`);
  }
  await new Promise((r) => setTimeout(r, 200));
}
