//! Port of PocketFlow's `tests/test_batch_node.py`.
//!
//! Python tests (6): test_array_chunking, test_map_reduce_sum,
//! test_uneven_chunks, test_custom_chunk_size, test_single_element_chunks,
//! test_empty_array.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pocketflow::{Action, BatchNode, BoxError, Ctx, Flow, Node, SharedStore};

/// Splits `input_array` into chunks, sums each, stores `chunk_results`.
struct ArrayChunkNode {
    chunk_size: usize,
}

impl BatchNode for ArrayChunkNode {
    type Item = Vec<i64>;
    type Output = i64;

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<Vec<i64>>, BoxError> {
        let array: Vec<i64> = if shared.contains_key("input_array") { shared.get("input_array")? } else { Vec::new() };
        Ok(array.chunks(self.chunk_size).map(<[i64]>::to_vec).collect())
    }

    fn exec(&self, _: &Ctx<'_>, chunk: &Vec<i64>) -> Result<i64, BoxError> {
        Ok(chunk.iter().sum())
    }

    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: Vec<Vec<i64>>, sums: Vec<i64>) -> Result<Action, BoxError> {
        shared.set("chunk_results", sums)?;
        Ok(Action::DEFAULT)
    }
}

/// Sums `chunk_results` into `total` (in `prep`, as in Python).
struct SumReduceNode;

impl Node for SumReduceNode {
    type Prep = ();
    type Exec = ();

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
        let chunk_results: Vec<i64> =
            if shared.contains_key("chunk_results") { shared.get("chunk_results")? } else { Vec::new() };
        shared.set("total", chunk_results.iter().sum::<i64>())?;
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

/// `chunk_node >> reduce_node` in a flow over `0..len`; returns `total`.
fn map_reduce(len: i64, chunk_size: usize) -> i64 {
    let shared = SharedStore::new();
    shared.set("input_array", (0..len).collect::<Vec<_>>()).unwrap();
    let mut flow = Flow::new();
    let chunk = flow.start(ArrayChunkNode { chunk_size });
    let reduce = flow.add(SumReduceNode);
    flow.link(chunk >> reduce);
    flow.run(&shared).expect("flow runs");
    shared.get("total").unwrap()
}

#[test]
fn array_chunking() {
    let shared = SharedStore::new();
    shared.set("input_array", (0..25).collect::<Vec<i64>>()).unwrap();
    ArrayChunkNode { chunk_size: 10 }.run(&shared).expect("node runs");
    assert_eq!(shared.get::<Vec<i64>>("chunk_results").unwrap(), vec![45, 145, 110]);
}

#[test]
fn map_reduce_sum() {
    assert_eq!(map_reduce(100, 10), 4950);
}

#[test]
fn uneven_chunks() {
    assert_eq!(map_reduce(25, 10), 300);
}

#[test]
fn custom_chunk_size() {
    assert_eq!(map_reduce(100, 15), 4950);
}

#[test]
fn single_element_chunks() {
    assert_eq!(map_reduce(5, 1), 10);
}

#[test]
fn empty_array() {
    assert_eq!(map_reduce(0, 10), 0);
}
