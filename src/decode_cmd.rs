//! `p2psip decode`: shows one RELOAD message (bare, or inside a framing-layer frame) as text or
//! JSON, or says in words why it does not decode.

use reload::codec::Codec;
use reload::wire::{BuiltinKinds, FramedMessage, Message};
use serde::Serialize;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `p2psip decode`.
#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// The input is hex text (whitespace and `:` ignored) rather than raw bytes.
    #[arg(long)]
    pub hex: bool,
    /// Print JSON instead of readable text.
    #[arg(long)]
    pub json: bool,
    /// File to read (default: standard input).
    pub file: Option<PathBuf>,
}

/// What the input turned out to be.
#[derive(Debug, Serialize)]
#[serde(tag = "layer", rename_all = "snake_case")]
enum Decoded<'a> {
    /// A framing-layer ACK.
    Ack {
        /// Acknowledged sequence number.
        ack_sequence: u32,
        /// Bitmap of earlier sequence numbers received.
        received: u32,
    },
    /// A RELOAD message, possibly from a data frame.
    Message {
        /// Sequence number when it came in a data frame.
        frame_sequence: Option<u32>,
        /// The message.
        message: reload::wire::DescribedMessage<'a>,
    },
}

/// Runs the subcommand; exit code 1 when the input does not decode.
pub fn run(args: DecodeArgs) -> ExitCode {
    let input = match read_input(&args) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (frame_sequence, bytes) = match unframe(&input) {
        Ok(Unframed::Ack {
            ack_sequence,
            received,
        }) => {
            return print(
                &args,
                &Decoded::Ack {
                    ack_sequence,
                    received,
                },
                || {
                    format!(
                        "framing ACK: ack_sequence {ack_sequence}, received bitmap {received:#034b}"
                    )
                },
            );
        }
        Ok(Unframed::Message { sequence, bytes }) => (sequence, bytes),
        Err(e) => {
            eprintln!("error: not a RELOAD frame: {e}");
            return ExitCode::FAILURE;
        }
    };
    let message = match Message::decode(&bytes) {
        Ok(m) => m,
        Err(e) => {
            let layer = if frame_sequence.is_some() {
                " (inside a data frame)"
            } else {
                ""
            };
            eprintln!("error: not a RELOAD message{layer}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let described = message.described(&BuiltinKinds);
    let text = || {
        let mut s = String::new();
        if let Some(seq) = frame_sequence {
            s.push_str(&format!("framing data frame, sequence {seq}\n"));
        }
        s.push_str(&message.describe(&BuiltinKinds));
        s
    };
    print(
        &args,
        &Decoded::Message {
            frame_sequence,
            message: described,
        },
        text,
    )
}

fn print(args: &DecodeArgs, value: &Decoded<'_>, text: impl FnOnce() -> String) -> ExitCode {
    if args.json {
        match serde_json::to_string_pretty(value) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("error: cannot render JSON: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        println!("{}", text());
    }
    ExitCode::SUCCESS
}

enum Unframed {
    Ack {
        ack_sequence: u32,
        received: u32,
    },
    Message {
        sequence: Option<u32>,
        bytes: Vec<u8>,
    },
}

/// A bare message starts with the RELO token (first byte 0xd2); a frame with 128 or 129.
fn unframe(input: &[u8]) -> Result<Unframed, reload::codec::DecodeError> {
    match input.first() {
        Some(0x80) | Some(0x81) => match FramedMessage::from_bytes(input)? {
            FramedMessage::Ack {
                ack_sequence,
                received,
            } => Ok(Unframed::Ack {
                ack_sequence,
                received,
            }),
            FramedMessage::Data { sequence, message } => Ok(Unframed::Message {
                sequence: Some(sequence),
                bytes: message.0,
            }),
        },
        _ => Ok(Unframed::Message {
            sequence: None,
            bytes: input.to_vec(),
        }),
    }
}

fn read_input(args: &DecodeArgs) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    match &args.file {
        Some(p) => {
            raw = std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?
        }
        None => {
            std::io::stdin()
                .read_to_end(&mut raw)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
        }
    }
    if !args.hex {
        return Ok(raw);
    }
    let text: String = String::from_utf8_lossy(&raw)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let text = text.strip_prefix("0x").unwrap_or(&text);
    hex::decode(text).map_err(|e| format!("input is not hex: {e}"))
}
