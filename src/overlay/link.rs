//! One overlay link: TLS over TCP carrying the RELOAD framing layer (RFC 6940 6.6.2,
//! TLS-TCP-FH-NO-ICE). Every data frame is answered with an ACK; ACKs of our frames give an
//! RTT estimate and an RTO (RFC 6298 section 2). On TCP nothing is retransmitted: a frame left
//! unacknowledged for longer than the RTO only marks the link as failing.

use reload::codec::Codec;
use reload::node::LinkId;
use reload::wire::framing::FramedMessage;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// What a link task tells the driver.
#[derive(Debug)]
pub enum LinkEvent {
    /// A whole RELOAD message arrived.
    Message {
        /// Link.
        link: LinkId,
        /// The message (framing removed).
        bytes: Vec<u8>,
    },
    /// New RTT figures after an ACK.
    Rtt {
        /// Link.
        link: LinkId,
        /// The sample in ms.
        sample_ms: f64,
        /// Smoothed RTT in ms.
        srtt_ms: f64,
        /// Retransmission timeout in ms.
        rto_ms: f64,
    },
    /// A frame stayed unacknowledged beyond the RTO (the link is failing).
    Failing {
        /// Link.
        link: LinkId,
    },
    /// The link ended (peer closed, error, or frame too large).
    Down {
        /// Link.
        link: LinkId,
        /// Why, in words.
        why: String,
    },
}

/// RFC 6298 section 2 estimator (G = 1 ms clock granularity; RTO floor 1 s as the RFC says).
#[derive(Debug, Clone)]
pub struct RttEstimator {
    /// Smoothed RTT (ms), once a sample exists.
    pub srtt: Option<f64>,
    /// RTT variation (ms).
    pub rttvar: f64,
    /// Current RTO (ms).
    pub rto: f64,
}

impl Default for RttEstimator {
    fn default() -> Self {
        Self {
            srtt: None,
            rttvar: 0.0,
            rto: 1000.0,
        }
    }
}

impl RttEstimator {
    /// Feeds one RTT measurement `r` in ms.
    pub fn sample(&mut self, r: f64) {
        const ALPHA: f64 = 1.0 / 8.0;
        const BETA: f64 = 1.0 / 4.0;
        const G: f64 = 1.0;
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2.0;
            }
            Some(s) => {
                self.rttvar = (1.0 - BETA) * self.rttvar + BETA * (s - r).abs();
                self.srtt = Some((1.0 - ALPHA) * s + ALPHA * r);
            }
        }
        let s = self.srtt.unwrap_or(r);
        self.rto = (s + G.max(4.0 * self.rttvar)).clamp(1000.0, 60_000.0);
    }
}

/// The `received` bitmask for an ACK of `seq` on an in-order stream: every earlier sequence
/// number arrived (LSB = seq-1, up to the MSB = seq-32; RFC 6940 6.6.2, bit N-M).
pub fn received_mask(seq: u32) -> u32 {
    if seq >= 32 {
        u32::MAX
    } else {
        (1u32 << seq) - 1
    }
}

/// Runs a link over an established TLS stream until either side closes it.
pub async fn run<S>(
    stream: S,
    link: LinkId,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    events: mpsc::Sender<LinkEvent>,
    max_message: usize,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut next_seq: u32 = 0;
    // Our unacknowledged data frames: (sequence, sent at).
    let mut unacked: VecDeque<(u32, Instant)> = VecDeque::new();
    let mut rtt = RttEstimator::default();
    let mut failing = false;
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    let why = loop {
        let deadline = unacked
            .front()
            .map(|(_, t)| *t + Duration::from_millis(rtt.rto as u64));
        let rto_sleep = async {
            match deadline {
                Some(d) if !failing => tokio::time::sleep_until(d.into()).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            out = outgoing.recv() => {
                let Some(bytes) = out else { break "closed by the node".to_string() };
                if bytes.len() > max_message {
                    tracing::warn!(?link, "not sending a {}-byte message: above the maximum message size {max_message}", bytes.len());
                    continue;
                }
                let frame = FramedMessage::Data { sequence: next_seq, message: bytes.into() };
                let mut enc = Vec::new();
                if frame.encode(&mut enc).is_err() { continue; }
                if unacked.len() < 1024 {
                    unacked.push_back((next_seq, Instant::now()));
                }
                next_seq = next_seq.wrapping_add(1);
                if let Err(e) = wr.write_all(&enc).await { break format!("write failed: {e}"); }
            }
            n = rd.read(&mut chunk) => {
                let n = match n { Ok(0) => break "peer closed the connection".to_string(), Ok(n) => n, Err(e) => break format!("read failed: {e}") };
                buf.extend_from_slice(&chunk[..n]);
                let mut err = None;
                loop {
                    // Enforce the maximum before the whole frame is buffered.
                    if buf.first() == Some(&reload::wire::framing::FRAME_DATA) && buf.len() >= 8 {
                        let len = (usize::from(buf[5]) << 16) | (usize::from(buf[6]) << 8) | usize::from(buf[7]);
                        if len > max_message {
                            err = Some(format!("peer sent a {len}-byte message, above the maximum message size {max_message}"));
                            break;
                        }
                    }
                    match FramedMessage::decode_prefix(&buf) {
                        Ok((frame, used)) => {
                            buf.drain(..used);
                            match frame {
                                FramedMessage::Data { sequence, message } => {
                                    let ack = FramedMessage::Ack { ack_sequence: sequence, received: received_mask(sequence) };
                                    let mut enc = Vec::new();
                                    if ack.encode(&mut enc).is_ok() && let Err(e) = wr.write_all(&enc).await {
                                        err = Some(format!("write failed: {e}"));
                                        break;
                                    }
                                    if events.send(LinkEvent::Message { link, bytes: message.0 }).await.is_err() {
                                        err = Some("node stopped".into());
                                        break;
                                    }
                                }
                                FramedMessage::Ack { ack_sequence, .. } => {
                                    let now = Instant::now();
                                    let mut sample = None;
                                    while let Some(&(s, t)) = unacked.front() {
                                        if s.wrapping_sub(ack_sequence) as i32 > 0 { break; }
                                        unacked.pop_front();
                                        if s == ack_sequence { sample = Some(now.duration_since(t)); }
                                    }
                                    if let Some(d) = sample {
                                        failing = false;
                                        let ms = d.as_secs_f64() * 1000.0;
                                        rtt.sample(ms);
                                        let _ = events.try_send(LinkEvent::Rtt { link, sample_ms: ms, srtt_ms: rtt.srtt.unwrap_or(ms), rto_ms: rtt.rto });
                                    }
                                }
                            }
                        }
                        Err(e) if e.kind == reload::codec::DecodeErrorKind::Truncated => break,
                        Err(e) => { err = Some(format!("undecodable frame: {e}")); break; }
                    }
                }
                if let Some(e) = err { break e; }
            }
            _ = rto_sleep => {
                failing = true;
                tracing::warn!(?link, "no ACK within the RTO of {:.0} ms: link is failing", rtt.rto);
                let _ = events.send(LinkEvent::Failing { link }).await;
            }
        }
    };
    let _ = wr.shutdown().await;
    let _ = events.send(LinkEvent::Down { link, why }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_follows_rfc_bit_order() {
        assert_eq!(received_mask(0), 0);
        assert_eq!(received_mask(1), 1);
        assert_eq!(received_mask(3), 0b111);
        assert_eq!(received_mask(32), u32::MAX);
        assert_eq!(received_mask(1000), u32::MAX);
    }

    #[test]
    fn rto_per_rfc6298() {
        let mut r = RttEstimator::default();
        r.sample(100.0);
        assert_eq!(r.srtt, Some(100.0));
        assert_eq!(r.rttvar, 50.0);
        assert_eq!(r.rto, 1000.0); // floor
        for _ in 0..50 {
            r.sample(4000.0);
        }
        assert!(r.rto > 4000.0 && r.rto < 60_000.0);
    }
}
