//! The MongoDB wire protocol, as much as drivers use: OP_MSG (kind-0 body, kind-1 document
//! sequences, the checksum flag), OP_QUERY for the legacy first hello, OP_REPLY to answer it.

use bson::{Bson, Document};
use tokio::io::{AsyncRead, AsyncReadExt};

pub const OP_REPLY: i32 = 1;
pub const OP_QUERY: i32 = 2004;
pub const OP_COMPRESSED: i32 = 2012;
pub const OP_MSG: i32 = 2013;
/// What the server announces as maxMessageSizeBytes; anything larger is refused.
pub const MAX_MESSAGE: usize = 48_000_000;
const CHECKSUM_PRESENT: u32 = 1;
const MORE_TO_COME: u32 = 1 << 1;

#[derive(Debug)]
pub enum WireError {
    Io(std::io::Error),
    Malformed(String),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Io(e) => write!(f, "i/o: {e}"),
            WireError::Malformed(m) => write!(f, "malformed message: {m}"),
        }
    }
}

impl std::error::Error for WireError {}

fn bad(m: impl Into<String>) -> WireError {
    WireError::Malformed(m.into())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub length: i32,
    pub request_id: i32,
    pub response_to: i32,
    pub op_code: i32,
}

/// A request, its body the command document (document sequences merged in as arrays).
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Msg {
        request_id: i32,
        body: Document,
        /// The client wants no reply (moreToCome).
        more_to_come: bool,
    },
    Query {
        request_id: i32,
        collection: String,
        query: Document,
    },
}

impl Request {
    pub fn request_id(&self) -> i32 {
        match self {
            Request::Msg { request_id, .. } | Request::Query { request_id, .. } => *request_id,
        }
    }

    pub fn body(&self) -> &Document {
        match self {
            Request::Msg { body, .. } => body,
            Request::Query { query, .. } => query,
        }
    }
}

/// Reads one message; `Ok(None)` on a clean end of stream before a header.
pub async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<Option<(Header, Vec<u8>)>, WireError> {
    let mut head = [0u8; 16];
    match r.read_exact(&mut head[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(WireError::Io(e)),
    }
    r.read_exact(&mut head[1..]).await.map_err(WireError::Io)?;
    let int = |i: usize| i32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let header = Header {
        length: int(0),
        request_id: int(4),
        response_to: int(8),
        op_code: int(12),
    };
    let length = usize::try_from(header.length).map_err(|_| bad("negative length"))?;
    if !(16..=MAX_MESSAGE).contains(&length) {
        return Err(bad(format!("message length {length} out of bounds")));
    }
    let mut body = vec![0u8; length - 16];
    r.read_exact(&mut body).await.map_err(WireError::Io)?;
    Ok(Some((header, body)))
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| bad("truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(self.i32()? as u32)
    }

    fn cstring(&mut self) -> Result<String, WireError> {
        let rest = &self.buf[self.pos..];
        let nul = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| bad("unterminated string"))?;
        let s = std::str::from_utf8(&rest[..nul]).map_err(|_| bad("string is not UTF-8"))?;
        self.pos += nul + 1;
        Ok(s.to_string())
    }

    fn document(&mut self) -> Result<Document, WireError> {
        let rest = &self.buf[self.pos..];
        if rest.len() < 5 {
            return Err(bad("truncated document"));
        }
        let len = i32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let len = usize::try_from(len)
            .ok()
            .filter(|l| (5..=rest.len()).contains(l))
            .ok_or_else(|| bad("document length out of bounds"))?;
        let doc = Document::from_reader(&rest[..len]).map_err(|e| bad(format!("bad BSON: {e}")))?;
        self.pos += len;
        Ok(doc)
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

pub fn parse(header: Header, body: &[u8]) -> Result<Request, WireError> {
    match header.op_code {
        OP_MSG => parse_msg(header, body),
        OP_QUERY => {
            let mut c = Cursor { buf: body, pos: 0 };
            let _flags = c.i32()?;
            let collection = c.cstring()?;
            let _skip = c.i32()?;
            let _return = c.i32()?;
            let query = c.document()?;
            Ok(Request::Query {
                request_id: header.request_id,
                collection,
                query,
            })
        }
        OP_COMPRESSED => Err(bad("compression was not negotiated")),
        other => Err(bad(format!("unsupported opcode {other}"))),
    }
}

fn parse_msg(header: Header, body: &[u8]) -> Result<Request, WireError> {
    let mut c = Cursor { buf: body, pos: 0 };
    let flags = c.u32()?;
    // Bits 0-15 are required to be understood: only checksumPresent and moreToCome are known.
    if flags & 0xffff & !(CHECKSUM_PRESENT | MORE_TO_COME) != 0 {
        return Err(bad(format!("unknown required flag bits {flags:#x}")));
    }
    let sections_end = if flags & CHECKSUM_PRESENT != 0 {
        body.len()
            .checked_sub(4)
            .ok_or_else(|| bad("no room for the checksum"))?
    } else {
        body.len()
    };
    let mut c = Cursor {
        buf: &body[..sections_end],
        pos: c.pos,
    };
    let mut main: Option<Document> = None;
    let mut sequences: Vec<(String, Vec<Bson>)> = Vec::new();
    while !c.done() {
        let kind = c.take(1)?[0];
        match kind {
            0 => {
                if main.is_some() {
                    return Err(bad("two body sections"));
                }
                main = Some(c.document()?);
            }
            1 => {
                let start = c.pos;
                let size = usize::try_from(c.i32()?).map_err(|_| bad("negative section size"))?;
                let end = start
                    .checked_add(size)
                    .filter(|e| *e <= c.buf.len() && size >= 5)
                    .ok_or_else(|| bad("section size out of bounds"))?;
                let id = c.cstring()?;
                let mut docs = Vec::new();
                while c.pos < end {
                    docs.push(Bson::Document(c.document()?));
                }
                if c.pos != end {
                    return Err(bad("document sequence overruns its section"));
                }
                sequences.push((id, docs));
            }
            k => return Err(bad(format!("unknown section kind {k}"))),
        }
    }
    let mut body = main.ok_or_else(|| bad("no body section"))?;
    for (id, docs) in sequences {
        body.insert(id, Bson::Array(docs));
    }
    Ok(Request::Msg {
        request_id: header.request_id,
        body,
        more_to_come: flags & MORE_TO_COME != 0,
    })
}

fn frame(request_id: i32, response_to: i32, op_code: i32, payload: &[u8]) -> Vec<u8> {
    let len = (16 + payload.len()) as i32;
    let mut out = Vec::with_capacity(16 + payload.len());
    for v in [len, request_id, response_to, op_code] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(payload);
    out
}

fn doc_bytes(doc: &Document) -> Vec<u8> {
    let mut buf = Vec::new();
    // Writing to a Vec cannot fail for documents built by the server itself.
    let _ = doc.to_writer(&mut buf);
    buf
}

pub fn encode_msg(request_id: i32, response_to: i32, doc: &Document) -> Vec<u8> {
    let mut payload = vec![0, 0, 0, 0, 0];
    payload.extend(doc_bytes(doc));
    frame(request_id, response_to, OP_MSG, &payload)
}

/// An OP_MSG reply whose body is given as raw BSON bytes (a hostile reply that no `Document`
/// could be built or serialised for without recursion).
pub fn encode_msg_raw(request_id: i32, response_to: i32, body: &[u8]) -> Vec<u8> {
    let mut payload = vec![0, 0, 0, 0, 0];
    payload.extend_from_slice(body);
    frame(request_id, response_to, OP_MSG, &payload)
}

/// A document nested `depth` levels deep (`{a: {a: {…}}}`), built without recursion.
pub fn nested_document(depth: usize) -> Vec<u8> {
    let mut doc = vec![5, 0, 0, 0, 0];
    for _ in 0..depth {
        let mut outer = Vec::with_capacity(doc.len() + 8);
        let len = (doc.len() + 8) as i32;
        outer.extend_from_slice(&len.to_le_bytes());
        outer.extend_from_slice(&[0x03, b'a', 0]);
        outer.extend_from_slice(&doc);
        outer.push(0);
        doc = outer;
    }
    doc
}

/// `{ok: 0.0, errmsg: <len bytes of 'x'>, code: 18}`, built directly.
pub fn huge_error(len: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(len + 64);
    body.push(0x01);
    body.extend_from_slice(b"ok\0");
    body.extend_from_slice(&0f64.to_le_bytes());
    body.push(0x02);
    body.extend_from_slice(b"errmsg\0");
    body.extend_from_slice(&((len + 1) as i32).to_le_bytes());
    body.resize(body.len() + len, b'x');
    body.push(0);
    body.push(0x10);
    body.extend_from_slice(b"code\0");
    body.extend_from_slice(&18i32.to_le_bytes());
    body.push(0);
    let mut doc = ((body.len() + 4) as i32).to_le_bytes().to_vec();
    doc.extend_from_slice(&body);
    doc
}

pub fn encode_reply(request_id: i32, response_to: i32, doc: &Document) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&0i32.to_le_bytes()); // responseFlags
    payload.extend_from_slice(&0i64.to_le_bytes()); // cursorID
    payload.extend_from_slice(&0i32.to_le_bytes()); // startingFrom
    payload.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
    payload.extend(doc_bytes(doc));
    frame(request_id, response_to, OP_REPLY, &payload)
}

/// Client side, for tests: an OP_MSG with one body and optional document sequences.
pub fn encode_request(
    request_id: i32,
    body: &Document,
    sequences: &[(&str, Vec<Document>)],
) -> Vec<u8> {
    let mut payload = vec![0, 0, 0, 0, 0];
    payload.extend(doc_bytes(body));
    for (id, docs) in sequences {
        let mut sec = Vec::new();
        sec.extend_from_slice(id.as_bytes());
        sec.push(0);
        for d in docs {
            sec.extend(doc_bytes(d));
        }
        payload.push(1);
        payload.extend_from_slice(&((sec.len() + 4) as i32).to_le_bytes());
        payload.extend(sec);
    }
    frame(request_id, 0, OP_MSG, &payload)
}

/// Client side, for tests: reads the reply body document of an OP_MSG or OP_REPLY.
pub fn reply_document(header: Header, body: &[u8]) -> Result<Document, WireError> {
    let mut c = Cursor { buf: body, pos: 0 };
    match header.op_code {
        OP_MSG => {
            c.take(5)?;
            c.document()
        }
        OP_REPLY => {
            c.take(20)?;
            c.document()
        }
        other => Err(bad(format!("unexpected reply opcode {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn roundtrip(bytes: Vec<u8>) -> Result<Request, WireError> {
        let header = Header {
            length: bytes.len() as i32,
            request_id: i32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            response_to: 0,
            op_code: i32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]),
        };
        parse(header, &bytes[16..])
    }

    #[test]
    fn document_sequences_are_merged_into_the_body() {
        let bytes = encode_request(
            7,
            &doc! {"insert": "c", "$db": "test"},
            &[("documents", vec![doc! {"a": 1}, doc! {"a": 2}])],
        );
        let req = roundtrip(bytes).expect("parses");
        assert_eq!(req.request_id(), 7);
        assert_eq!(req.body().get_array("documents").expect("array").len(), 2);
    }

    #[test]
    fn checksum_flag_is_tolerated() {
        let mut bytes = encode_request(1, &doc! {"ping": 1}, &[]);
        bytes[16] = 1; // checksumPresent
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        let len = bytes.len() as i32;
        bytes[..4].copy_from_slice(&len.to_le_bytes());
        assert_eq!(roundtrip(bytes).expect("parses").body(), &doc! {"ping": 1});
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let good = encode_request(1, &doc! {"ping": 1}, &[]);
        for cut in 16..good.len() {
            let mut b = good[..cut].to_vec();
            let len = b.len() as i32;
            b[..4].copy_from_slice(&len.to_le_bytes());
            assert!(roundtrip(b).is_err(), "cut at {cut} accepted");
        }
        let mut unknown = good.clone();
        unknown[16] = 4; // an unknown required bit
        assert!(roundtrip(unknown).is_err());
        let mut kind = good;
        kind[20] = 9;
        assert!(roundtrip(kind).is_err());
    }

    #[tokio::test]
    async fn oversized_lengths_are_refused_before_reading() {
        let mut b = Vec::new();
        b.extend_from_slice(&(MAX_MESSAGE as i32 + 1).to_le_bytes());
        b.extend_from_slice(&[0; 12]);
        let err = read_message(&mut b.as_slice()).await.expect_err("refused");
        assert!(err.to_string().contains("out of bounds"), "{err}");
    }
}
