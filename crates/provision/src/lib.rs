//! The reconciler: observe the stack in AWS, plan the changes against its description, apply them.
