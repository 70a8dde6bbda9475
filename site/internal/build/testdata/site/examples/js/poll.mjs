const res = await fetch("http://localhost:8080/v1/reports", { method: "POST" });
console.log(res.status);
