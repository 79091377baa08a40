// Independent checks of hookrelay's requests on the wire, with Node's crypto.
//
// Same input as check.py (one JSON object per line on stdin); prints one JSON object per
// line: {case, matched: [bool per secret], seed_002_node, seed_004_node}. The seed checks
// re-implement the TaskLink (002) and task-hub (004) documents' Node receivers, which verify
// JSON.stringify(req.body) (the body parsed and written again) instead of the raw bytes.
const crypto = require('crypto');
const readline = require('readline');

const mac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();
const same = (a, b) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
};

function check(c) {
  const h = c.headers;
  const body = Buffer.from(c.body_hex, 'hex');
  const matched = c.secrets.map((secret) => {
    switch (c.profile) {
      case 'proposal-generator':
        return same(mac(secret, body).toString('hex'), h['x-webhook-signature']);
      case 'tasklink':
        return same('sha256=' + mac(secret, Buffer.concat([Buffer.from(h['x-webhook-id']), body])).toString('hex'), h['x-webhook-signature']);
      case 'taskon': {
        const data = JSON.parse(body.toString('utf8'));
        const signed = `{"timestamp":${data.timestamp},"user_id":${data.user_id}}`;
        return same(mac(secret, signed).toString('hex'), h['x-signature']);
      }
      case 'task-hub':
        return same('sha256=' + mac(secret, body).toString('hex'), h['x-hub-signature']);
      case 'github':
        return same('sha256=' + mac(secret, body).toString('hex'), h['x-hub-signature-256']);
      case 'standard-webhooks': {
        const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
        const signed = Buffer.concat([Buffer.from(`${h['webhook-id']}.${h['webhook-timestamp']}.`), body]);
        const expected = 'v1,' + mac(key, signed).toString('base64');
        return h['webhook-signature'].split(' ').some((s) => same(expected, s));
      }
      case 'stripe': {
        const items = h['stripe-signature'].split(',').map((i) => [i.slice(0, i.indexOf('=')), i.slice(i.indexOf('=') + 1)]);
        const t = items.find(([k]) => k === 't')[1];
        const expected = mac(secret, Buffer.concat([Buffer.from(t + '.'), body])).toString('hex');
        return items.some(([k, v]) => k === 'v1' && same(expected, v));
      }
      default:
        throw new Error('unknown profile ' + c.profile);
    }
  });
  let seed002 = null;
  let seed004 = null;
  const secret = c.secrets[0];
  if (c.profile === 'tasklink') {
    // The seed's Node receiver, as documented.
    const payload = h['x-webhook-id'] + JSON.stringify(JSON.parse(body.toString('utf8')));
    const expected = crypto.createHmac('sha256', secret).update(payload).digest('hex');
    const received = h['x-webhook-signature'].replace('sha256=', '');
    seed002 = same(expected, received);
  }
  if (c.profile === 'task-hub') {
    const signature = h['x-hub-signature'].replace('sha256=', '');
    const payload = JSON.stringify(JSON.parse(body.toString('utf8')));
    const expected = crypto.createHmac('sha256', secret).update(payload).digest('hex');
    seed004 = same(signature, expected);
  }
  return { case: c.case, matched, seed_002_node: seed002, seed_004_node: seed004 };
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim()) console.log(JSON.stringify(check(JSON.parse(line))));
});
